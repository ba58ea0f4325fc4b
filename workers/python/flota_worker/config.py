"""
Worker configuration: the variables the TypeScript worker reads
(worker/src/config.ts) that this worker understands, read once and validated
once. Every problem is reported at the same time, one line each, named by
its variable, so a misconfigured worker can be fixed in one pass.
"""

from __future__ import annotations

import os
import re
import socket
from dataclasses import dataclass, field
from typing import Callable, Mapping, TypeVar

from .errors import ConfigError

WORKER_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
_HOST_PORT = re.compile(r"^[A-Za-z0-9.-]+:\d{1,5}$|^\[[0-9A-Fa-f:]+\]:\d{1,5}$")
_MQTT_URL = re.compile(r"^(mqtts?|wss?|tcp)://\S+$")
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")
_ON = re.compile(r"^(1|true|yes|on)$", re.IGNORECASE)
_OFF = re.compile(r"^(0|false|no|off)$", re.IGNORECASE)
_SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSWORD|KEY")

LOG_LEVELS = ("trace", "debug", "info", "warn", "error", "fatal", "silent")
PROVIDERS = ("echo", "openai")
OTHER_PROVIDERS = ("gemini", "llama")
CONTINUATION_MODES = ("off", "prefill", "vllm")
DEFAULT_MODELS = {"echo": ["echo"]}


@dataclass(frozen=True)
class WorkerConfig:
    worker_id: str
    worker_token: str | None
    """This worker's own credential; None when it enrolls with `join_token` at start."""
    join_token: str | None = None
    mqtt_url: str = "mqtt://127.0.0.1:1883"
    mqtt_username: str | None = None
    mqtt_password: str | None = None
    mqtt_prefix: str = "flota/v1"
    master_grpc: str = "127.0.0.1:50051"
    tls_ca: str | None = None
    """PEM text, not a path."""
    tls_cert: str | None = None
    tls_key: str | None = None
    grpc_tls: bool = False
    kind: str = "cpu"
    slots: int = 2
    provider: str = "echo"
    models: list[str] = field(default_factory=lambda: ["echo"])
    labels: dict[str, str] = field(default_factory=dict)
    weight: int = 1
    echo_delay_ms: int = 0
    echo_delay_jitter_ms: int = 0
    echo_chunk_size: int = 16
    openai_base_url: str | None = None
    openai_api_key: str | None = None
    openai_continuation: str = "off"
    heartbeat_ms: int = 1000
    shutdown_grace_ms: int = 10_000
    log_level: str = "info"


T = TypeVar("T")


class _Reader:
    """Reads variables, collecting one problem line per bad variable instead of stopping at the first."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.problems: list[str] = []

    def raw(self, name: str) -> str | None:
        value = self.env.get(name)
        if value is None or value.strip() == "":
            return None
        return value.strip()

    def problem(self, name: str, message: str) -> None:
        value = self.raw(name)
        shown = "" if value is None or _SECRET_NAME.search(name) else f" (got {value!r})"
        self.problems.append(f"{name}: {message}{shown}")

    def text(self, name: str, default: T, max_len: int | None = None) -> str | T:
        value = self.raw(name)
        if value is None:
            return default
        if max_len is not None and len(value) > max_len:
            self.problem(name, f"at most {max_len} characters")
            return default
        return value

    def matching(self, name: str, pattern: re.Pattern[str], default: T, message: str) -> str | T:
        value = self.raw(name)
        if value is None:
            return default
        if not pattern.search(value):
            self.problem(name, message)
            return default
        return value

    def integer(self, name: str, low: int, high: int, default: int) -> int:
        value = self.raw(name)
        if value is None:
            return default
        if not _NUMBER.match(value):
            self.problem(name, "expected a number")
            return default
        number = float(value)
        if not number.is_integer():
            self.problem(name, "expected a whole number")
            return default
        if not low <= number <= high:
            self.problem(name, f"expected a whole number from {low} to {high}")
            return default
        return int(number)

    def choice(self, name: str, choices: tuple[str, ...], default: T) -> str | T:
        value = self.raw(name)
        if value is None:
            return default
        if value not in choices:
            self.problem(name, f"expected one of {', '.join(choices)}")
            return default
        return value

    def flag(self, name: str) -> bool | None:
        value = self.raw(name)
        if value is None:
            return None
        if _ON.match(value):
            return True
        if _OFF.match(value):
            return False
        self.problem(name, "expected true or false")
        return None

    def pem(self, name: str) -> str | None:
        path = self.raw(name)
        if path is None:
            return None
        try:
            with open(path, encoding="utf-8") as file:
                text = file.read()
        except OSError as error:
            self.problem(name, f"cannot read {path} ({error.strerror})")
            return None
        if "-----BEGIN " not in text:
            self.problem(name, f"{path} is not a PEM file")
            return None
        return text

    def listed(self, name: str, check: Callable[[list[str]], str | None]) -> list[str] | None:
        value = self.raw(name)
        if value is None:
            return None
        items = [part.strip() for part in value.split(",") if part.strip()]
        why = check(items)
        if why:
            self.problem(name, why)
            return None
        return items


def _check_models(models: list[str]) -> str | None:
    if not 1 <= len(models) <= 256:
        return "expected 1 to 256 comma-separated model names"
    if any(len(m) > 200 for m in models):
        return "a model name is longer than 200 characters"
    return None


def _labels(reader: _Reader) -> dict[str, str]:
    entries = reader.listed("LABELS", lambda _: None) or []
    labels: dict[str, str] = {}
    for entry in entries:
        key, eq, value = entry.partition("=")
        key, value = key.strip(), value.strip()
        if not eq or not key:
            reader.problem("LABELS", f"expected k=v, got {entry!r}")
        elif len(key) > 64 or len(value) > 256:
            reader.problem("LABELS", "keys are at most 64 characters, values at most 256")
        else:
            labels[key] = value
    return labels


def default_worker_id(kind: str, hostname: str, pid: int) -> str:
    """kind + hostname + pid, squeezed into the characters a topic id allows."""
    host = re.sub(r"^[^A-Za-z0-9]+", "", re.sub(r"[^A-Za-z0-9._-]+", "-", hostname))
    return f"{kind}-{host or 'host'}-{pid}"[:128]


def load_config(env: Mapping[str, str] | None = None) -> WorkerConfig:
    """Reads and validates the environment; raises ConfigError listing every problem."""
    env = os.environ if env is None else env
    r = _Reader(env)
    provider = r.raw("PROVIDER") or "echo"
    if provider in OTHER_PROVIDERS:
        r.problem("PROVIDER", f"{provider} is served by the TypeScript worker only; this worker runs echo or openai")
    elif provider not in PROVIDERS:
        r.problem("PROVIDER", "expected echo or openai")
    kind = r.choice("WORKER_KIND", ("cpu", "gpu"), "cpu")
    worker_id = r.matching(
        "WORKER_ID",
        WORKER_ID_PATTERN,
        None,
        "worker id: letters, digits, . _ : - (max 128), starting alphanumeric",
    )
    token = r.text("WORKER_TOKEN", None, 512)
    join_token = r.text("WORKER_JOIN_TOKEN", None, 512)
    if token is None and join_token is None:
        r.problems.append(
            "WORKER_TOKEN or WORKER_JOIN_TOKEN: required (the master refuses a worker without a credential); "
            "WORKER_TOKEN is printed on the master by `flota token worker <WORKER_ID>`, "
            "WORKER_JOIN_TOKEN by `flota token join <PREFIX>`"
        )
    models = r.listed("MODELS", _check_models)
    if provider == "openai":
        if r.raw("OPENAI_BASE_URL") is None:
            r.problems.append("OPENAI_BASE_URL: required when PROVIDER=openai (e.g. http://localhost:11434/v1)")
        if r.raw("MODELS") is None:
            r.problems.append("MODELS: required when PROVIDER=openai (comma-separated model names)")
    base_url = r.matching("OPENAI_BASE_URL", re.compile(r"^https?://\S+$"), None, "expected an http:// or https:// URL")
    tls_ca = r.pem("TLS_CA")
    tls_cert = r.pem("TLS_CERT")
    tls_key = r.pem("TLS_KEY")
    if (r.raw("TLS_CERT") is None) != (r.raw("TLS_KEY") is None):
        missing = "TLS_KEY" if r.raw("TLS_CERT") else "TLS_CERT"
        r.problems.append(f"{missing}: TLS_CERT and TLS_KEY go together (the client certificate and its key)")
    grpc_tls = r.flag("GRPC_TLS")
    config = WorkerConfig(
        worker_id=worker_id or default_worker_id(kind, socket.gethostname(), os.getpid()),
        worker_token=token,
        join_token=None if token is not None else join_token,
        mqtt_url=r.matching("MQTT_URL", _MQTT_URL, "mqtt://127.0.0.1:1883", "expected an mqtt:// or mqtts:// URL"),
        mqtt_username=r.text("MQTT_USERNAME", None),
        mqtt_password=r.text("MQTT_PASSWORD", None),
        mqtt_prefix=r.text("MQTT_PREFIX", "flota/v1", 200).rstrip("/"),
        master_grpc=r.matching("MASTER_GRPC", _HOST_PORT, "127.0.0.1:50051", "expected host:port"),
        tls_ca=tls_ca,
        tls_cert=tls_cert,
        tls_key=tls_key,
        grpc_tls=grpc_tls if grpc_tls is not None else tls_ca is not None,
        kind=kind,
        slots=r.integer("SLOTS", 1, 1024, 2),
        provider=provider,
        models=models or list(DEFAULT_MODELS.get(provider, [])),
        labels=_labels(r),
        weight=r.integer("WEIGHT", 1, 1000, 1),
        echo_delay_ms=r.integer("ECHO_DELAY_MS", 0, 600_000, 0),
        echo_delay_jitter_ms=r.integer("ECHO_DELAY_JITTER_MS", 0, 600_000, 0),
        echo_chunk_size=r.integer("ECHO_CHUNK_SIZE", 1, 1_000_000, 16),
        openai_base_url=base_url,
        openai_api_key=r.text("OPENAI_API_KEY", None),
        openai_continuation=r.choice("OPENAI_CONTINUATION", CONTINUATION_MODES, "off"),
        heartbeat_ms=r.integer("HEARTBEAT_MS", 50, 60_000, 1000),
        shutdown_grace_ms=r.integer("SHUTDOWN_GRACE_MS", 0, 600_000, 10_000),
        log_level=r.choice("LOG_LEVEL", LOG_LEVELS, "info"),
    )
    if r.problems:
        lines = "\n".join(f"  - {p}" for p in dict.fromkeys(r.problems))
        raise ConfigError(f"invalid worker configuration:\n{lines}")
    return config
