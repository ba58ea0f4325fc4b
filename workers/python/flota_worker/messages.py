"""
The JSON messages of docs/PROTOCOL.md § MQTT: assignments and control
messages parsed and validated as proto/src/schemas/task.ts does (a bad one
raises ValidationError naming the field), and the records this worker
publishes. Unknown fields are ignored, as the reference schemas strip them;
`params` and a live `config` are strict, as theirs are.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal, Union

from .errors import ValidationError

MAX_PROMPT_CHARS = 100_000
MAX_CONTINUATION_CHARS = MAX_PROMPT_CHARS
MAX_CONVERSATION_CHARS = 4 * MAX_PROMPT_CHARS
MAX_HISTORY_MESSAGES = 50
MAX_MQTT_PAYLOAD_BYTES = 1024 * 1024
# A conversation and a continued answer, at up to 6 JSON bytes a character, plus ids and keys.
MAX_ASSIGNMENT_BYTES = 6 * (MAX_CONVERSATION_CHARS + MAX_CONTINUATION_CHARS) + 64 * 1024
RESERVED_LABEL_KEYS = ("__proto__", "constructor", "prototype")

_LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")
ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class ChatMessage:
    role: str
    content: str


@dataclass(frozen=True)
class Params:
    temperature: float | None = None
    max_tokens: int | None = None
    stop: list[str] | None = None


@dataclass(frozen=True)
class Assignment:
    task_id: str
    attempt: int
    lease: str
    model: str
    prompt: str
    deadline: int
    queued_at: int
    params: Params = field(default_factory=Params)
    messages: list[ChatMessage] | None = None
    api_key: str | None = None
    continue_from: str | None = None

    @property
    def key(self) -> str:
        return f"{self.task_id}#{self.attempt}"


@dataclass(frozen=True)
class Cancel:
    task_id: str
    attempt: int | None = None
    type: Literal["cancel"] = "cancel"


@dataclass(frozen=True)
class Drain:
    id: str | None = None
    type: Literal["drain"] = "drain"


@dataclass(frozen=True)
class Resume:
    id: str | None = None
    type: Literal["resume"] = "resume"


@dataclass(frozen=True)
class Shutdown:
    id: str | None = None
    restart: bool = False
    type: Literal["shutdown"] = "shutdown"


@dataclass(frozen=True)
class LiveConfig:
    slots: int | None = None
    models: list[str] | None = None
    weight: int | None = None
    labels: dict[str, str] | None = None


@dataclass(frozen=True)
class Configure:
    id: str
    config: LiveConfig
    type: Literal["config"] = "config"


Control = Union[Cancel, Drain, Resume, Shutdown, Configure]


# --- field checks -------------------------------------------------------------------------


def _fail(path: str, problem: str) -> ValidationError:
    return ValidationError(f"{path}: {problem}")


def _object(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(path, "expected an object")
    return value


def _strict(value: dict[str, Any], allowed: tuple[str, ...], path: str) -> None:
    extra = [k for k in value if k not in allowed]
    if extra:
        raise _fail(path, f"unknown field {extra[0]!r}")


def _storable(text: str) -> bool:
    """No NUL and no lone UTF-16 surrogate (Python's json keeps one as a surrogate code point)."""
    return "\x00" not in text and not _LONE_SURROGATE.search(text)


def _string(obj: dict[str, Any], name: str, low: int = 0, high: int | None = None, storable: bool = False) -> str:
    value = obj.get(name)
    if not isinstance(value, str):
        raise _fail(name, "expected a string")
    if len(value) < low:
        raise _fail(name, "must not be empty" if low == 1 else f"at least {low} characters")
    if high is not None and len(value) > high:
        raise _fail(name, f"at most {high} characters")
    if storable and not _storable(value):
        raise _fail(name, "contains a NUL character or a lone UTF-16 surrogate")
    return value


def _optional_string(obj: dict[str, Any], name: str, low: int = 0, high: int | None = None) -> str | None:
    return None if obj.get(name) is None and name not in obj else _string(obj, name, low, high)


def _is_int(value: Any) -> bool:
    return (isinstance(value, int) and not isinstance(value, bool)) or (
        isinstance(value, float) and value.is_integer()
    )


def _integer(obj: dict[str, Any], name: str, low: int, high: int | None = None) -> int:
    value = obj.get(name)
    if not _is_int(value):
        raise _fail(name, "expected a whole number")
    number = int(value)
    if number < low or (high is not None and number > high):
        raise _fail(name, f"expected a whole number from {low}" + (f" to {high}" if high is not None else " up"))
    return number


def _params(value: Any) -> Params:
    if value is None:
        return Params()
    obj = _object(value, "params")
    _strict(obj, ("temperature", "maxTokens", "stop"), "params")
    temperature = obj.get("temperature")
    if temperature is not None and (
        isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not 0 <= temperature <= 2
    ):
        raise _fail("params.temperature", "expected a number from 0 to 2")
    max_tokens = None
    if "maxTokens" in obj:
        max_tokens = _integer(obj, "maxTokens", 1, 1_000_000)
    stop = obj.get("stop")
    if stop is not None:
        if not isinstance(stop, list) or len(stop) > 4:
            raise _fail("params.stop", "expected at most 4 strings")
        for item in stop:
            if not isinstance(item, str) or not 1 <= len(item) <= 256 or not _storable(item):
                raise _fail("params.stop", "each stop sequence is 1 to 256 characters of text")
    return Params(temperature=temperature, max_tokens=max_tokens, stop=stop)


def _messages(value: Any) -> list[ChatMessage] | None:
    if value is None:
        return None
    if not isinstance(value, list) or len(value) > MAX_HISTORY_MESSAGES:
        raise _fail("messages", f"expected at most {MAX_HISTORY_MESSAGES} messages")
    out = []
    for i, raw in enumerate(value):
        obj = _object(raw, f"messages.{i}")
        if obj.get("role") not in ROLES:
            raise _fail(f"messages.{i}.role", "expected system, user or assistant")
        content = obj.get("content")
        if not isinstance(content, str) or len(content) > MAX_PROMPT_CHARS or not _storable(content):
            raise _fail(f"messages.{i}.content", f"expected text of at most {MAX_PROMPT_CHARS} characters")
        out.append(ChatMessage(role=obj["role"], content=content))
    return out


def decode_json(payload: bytes, max_bytes: int) -> Any:
    """Size first, then JSON: an empty or oversized payload is refused before any parsing."""
    if len(payload) == 0:
        raise ValidationError("empty payload")
    if len(payload) > max_bytes:
        raise ValidationError(f"payload of {len(payload)} bytes is over the bound of {max_bytes}")
    try:
        return json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValidationError(f"not JSON ({error})") from error


def parse_assignment(value: Any) -> Assignment:
    obj = _object(value, "(assignment)")
    return Assignment(
        task_id=_string(obj, "taskId", 1, 128),
        attempt=_integer(obj, "attempt", 1),
        lease=_string(obj, "lease", 1, 128),
        model=_string(obj, "model", 1, 200, storable=True),
        prompt=_string(obj, "prompt", 0, MAX_PROMPT_CHARS),
        messages=_messages(obj.get("messages")),
        params=_params(obj.get("params")),
        api_key=_optional_string(obj, "apiKey", 0, 512),
        deadline=_integer(obj, "deadline", 0),
        queued_at=_integer(obj, "queuedAt", 0),
        continue_from=_optional_string(obj, "continueFrom", 1, MAX_CONTINUATION_CHARS),
    )


def _control_id(obj: dict[str, Any], required: bool = False) -> str | None:
    if not required and obj.get("id") is None and "id" not in obj:
        return None
    return _string(obj, "id", 1, 64)


def _live_config(value: Any) -> LiveConfig:
    obj = _object(value, "config")
    _strict(obj, ("slots", "models", "weight", "labels"), "config")
    slots = _integer(obj, "slots", 1, 1024) if "slots" in obj else None
    weight = _integer(obj, "weight", 1, 1000) if "weight" in obj else None
    models = obj.get("models")
    if models is not None:
        if (
            not isinstance(models, list)
            or not 1 <= len(models) <= 256
            or not all(isinstance(m, str) and 1 <= len(m) <= 200 and _storable(m) for m in models)
        ):
            raise _fail("config.models", "expected 1 to 256 model names of 1 to 200 characters")
    labels = obj.get("labels")
    if labels is not None:
        labels = _object(labels, "config.labels")
        if len(labels) > 16:
            raise _fail("config.labels", "at most 16 labels")
        for k, v in labels.items():
            if k in RESERVED_LABEL_KEYS:
                raise _fail(f"config.labels.{k}", "reserved label key")
            if not 1 <= len(k) <= 64 or not isinstance(v, str) or len(v) > 256:
                raise _fail(f"config.labels.{k}", "keys 1 to 64 characters, values text of at most 256")
    if slots is None and models is None and weight is None and labels is None:
        raise _fail("config", "name at least one of slots, models, weight, labels")
    return LiveConfig(slots=slots, models=models, weight=weight, labels=labels)


def parse_control(value: Any) -> Control:
    obj = _object(value, "(control)")
    kind = obj.get("type")
    if kind == "cancel":
        attempt = _integer(obj, "attempt", 1) if obj.get("attempt") is not None else None
        return Cancel(task_id=_string(obj, "taskId", 1, 128), attempt=attempt)
    if kind == "drain":
        return Drain(id=_control_id(obj))
    if kind == "resume":
        return Resume(id=_control_id(obj))
    if kind == "shutdown":
        restart = obj.get("restart", False)
        if not isinstance(restart, bool):
            raise _fail("restart", "expected true or false")
        return Shutdown(id=_control_id(obj), restart=restart)
    if kind == "config":
        return Configure(id=_control_id(obj, required=True) or "", config=_live_config(obj.get("config")))
    raise _fail("type", "expected cancel, drain, resume, shutdown or config")


def compact(value: Any) -> bytes:
    """Compact JSON, as every MQTT payload is sent."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
