"""
The deterministic provider of worker/src/providers/echo.ts: answers
`echo: <prompt>` in pieces of `chunk_size` characters, piece i due
(i + 1) × delay ms after the attempt started (a late piece goes at once).
It continues a half-streamed answer with the rest of the same answer.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from typing import Callable

from .base import ChunkHandler, GenerateRequest, GenerateResult, Usage


def echo_answer(request: GenerateRequest) -> str:
    """`echo: <prompt>` (or the last user turn), ending before the first stop sequence in it."""
    last_user = next((m.content for m in reversed(request.messages or []) if m.role == "user"), None)
    text = f"echo: {request.prompt or last_user or ''}"
    end = len(text)
    for stop in request.params.stop or []:
        at = text.find(stop)
        if at != -1 and at < end:
            end = at
    return text[:end]


def approx_tokens(text: str) -> int:
    """About four characters per token, so usage is never empty."""
    return math.ceil(len(text) / 4)


def chunk_delay(delay_ms: int, jitter_ms: int, draw: Callable[[], float] = random.random) -> int:
    """The wait before each chunk of one task: delay_ms plus this task's draw of 0..jitter_ms."""
    if jitter_ms <= 0:
        return delay_ms
    return delay_ms + min(jitter_ms, math.floor(min(max(draw(), 0.0), 1.0) * (jitter_ms + 1)))


class EchoProvider:
    name = "echo"
    continues = True

    def __init__(self, delay_ms: int, chunk_size: int, jitter_ms: int = 0) -> None:
        self.delay_ms = delay_ms
        self.chunk_size = max(1, chunk_size)
        self.jitter_ms = max(0, jitter_ms)

    async def generate(self, request: GenerateRequest, on_chunk: ChunkHandler) -> GenerateResult:
        # The answer is a function of the prompt: what follows the continued text is the rest of it.
        text = echo_answer(request)[len(request.continue_from or "") :]
        delay_ms = chunk_delay(self.delay_ms, self.jitter_ms)
        due = request.started_at
        for at in range(0, max(len(text), 1), self.chunk_size):
            if delay_ms > 0:
                due += delay_ms
                await asyncio.sleep(max(0.0, due / 1000 - time.time()))
            else:
                await asyncio.sleep(0)  # a point where a cancel lands
            on_chunk(text[at : at + self.chunk_size])
        return GenerateResult(
            text=text,
            usage=Usage(approx_tokens(request.prompt), approx_tokens(text), estimated=True),
        )
