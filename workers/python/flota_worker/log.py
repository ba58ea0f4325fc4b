"""
JSON log lines (docs/PROTOCOL.md § logs): one line per message on stderr, and
the same line on `logs/{source}` while the broker link is up. Secrets are
redacted at any depth before a line leaves the process.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
import time
from typing import Any, Callable, TextIO

LEVELS = {"trace": 10, "debug": 20, "info": 30, "warn": 40, "error": 50, "fatal": 60, "silent": 100}
REDACTED_KEYS = frozenset(
    (
        "apiKey",
        "key",
        "token",
        "password",
        "secret",
        "authorization",
        "credential",
        "joinToken",
        "lease",
        "prompt",
        "messages",
        "text",
        "answer",
        "result",
    )
)
_URL_PASSWORD = re.compile(r"(://[^:/@\s]*:)[^@/\s]+@")


def redact(value: Any, key: str | None = None) -> Any:
    """What a log line may carry of `value`, found under `key`."""
    if key in REDACTED_KEYS:
        return "[redacted]"
    if key == "sessionId" and isinstance(value, str):
        return "#" + hashlib.sha256(value.encode("utf-8")).hexdigest()[:10]
    if isinstance(value, dict):
        return {k: redact(v, k) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return _URL_PASSWORD.sub(r"\1***@", value)
    return value


def redact_url(url: str) -> str:
    """A URL with any password in it written as ***."""
    return _URL_PASSWORD.sub(r"\1***@", url)


class Logger:
    """Object-first logging: `log.info("task started", taskId=…)`; `child(component=…)` adds fields."""

    def __init__(
        self,
        source: str,
        level: str = "info",
        fields: dict[str, Any] | None = None,
        stream: TextIO | None = None,
        sink: list[Callable[[str], None] | None] | None = None,
    ) -> None:
        self.source = source
        self.threshold = LEVELS[level]
        self.fields = fields or {}
        self.stream = stream or sys.stderr
        # Shared by every child, so attaching the MQTT publisher once reaches them all.
        self._sink = sink if sink is not None else [None]

    def child(self, **fields: Any) -> "Logger":
        return Logger(self.source, self._level_name(), {**self.fields, **fields}, self.stream, self._sink)

    def attach_publisher(self, publish: Callable[[str], None] | None) -> None:
        self._sink[0] = publish

    def _level_name(self) -> str:
        return next(name for name, n in LEVELS.items() if n == self.threshold)

    def _write(self, level: str, msg: str, fields: dict[str, Any]) -> None:
        if LEVELS[level] < self.threshold:
            return
        record = {"level": level, "ts": int(time.time() * 1000), "source": self.source}
        record.update(redact({**self.fields, **fields}))
        record["msg"] = msg
        line = json.dumps(record, separators=(",", ":"), ensure_ascii=False, default=str)
        try:
            self.stream.write(line + "\n")
            self.stream.flush()
        except (OSError, ValueError):
            pass
        publish = self._sink[0]
        if publish is not None:
            publish(line)

    def trace(self, msg: str, **fields: Any) -> None:
        self._write("trace", msg, fields)

    def debug(self, msg: str, **fields: Any) -> None:
        self._write("debug", msg, fields)

    def info(self, msg: str, **fields: Any) -> None:
        self._write("info", msg, fields)

    def warn(self, msg: str, **fields: Any) -> None:
        self._write("warn", msg, fields)

    def error(self, msg: str, **fields: Any) -> None:
        self._write("error", msg, fields)
