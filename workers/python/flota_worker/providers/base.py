"""What a model backend is: `generate` streams pieces through `on_chunk` and returns the whole text."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Protocol, Sequence

from ..messages import ChatMessage, Params


@dataclass(frozen=True)
class GenerateRequest:
    model: str
    prompt: str
    params: Params
    started_at: int
    """When the worker started the attempt (Unix ms); echo paces its chunks from it."""
    messages: list[ChatMessage] | None = None
    api_key: str | None = None
    continue_from: str | None = None
    """The text an earlier attempt streamed; a provider that `continues` generates only what follows."""


@dataclass(frozen=True)
class Usage:
    input_tokens: int
    output_tokens: int
    estimated: bool = False


@dataclass(frozen=True)
class GenerateResult:
    text: str
    usage: Usage | None = None


ChunkHandler = Callable[[str], None]


class Provider(Protocol):
    name: str
    continues: bool
    """True when `generate` honours `continue_from`."""

    async def generate(self, request: GenerateRequest, on_chunk: ChunkHandler) -> GenerateResult:
        """Cancelled (asyncio) when the attempt is stopped; raises ProviderError on failure."""
        ...


_REDACTED = "[redacted]"
_MAX_ERROR_CHARS = 500
_PATTERNS = [
    re.compile(r"(Bearer\s+)[^\s\"',]+", re.IGNORECASE),
    re.compile(r"([?&](?:key|api_key|apiKey|access_token)=)[^&\s\"']+"),
    re.compile(r"(\"?(?:x-goog-api-key|api[_-]?key|authorization)\"?\s*[:=]\s*\"?)[^\s\"',}]+", re.IGNORECASE),
    re.compile(r"\bAIza[0-9A-Za-z_-]{20,}\b"),
    re.compile(r"\bsk-[0-9A-Za-z_-]{16,}\b"),
]


def scrub_secrets(text: str, secrets: Sequence[str | None]) -> str:
    """Keys never reach a log line, a result or an error text (worker/src/providers/scrub.ts)."""
    out = text
    for secret in secrets:
        if secret and len(secret) >= 4:
            out = out.replace(secret, _REDACTED)
    for pattern in _PATTERNS:
        out = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + _REDACTED, out)
    return out[:_MAX_ERROR_CHARS] + "…" if len(out) > _MAX_ERROR_CHARS else out
