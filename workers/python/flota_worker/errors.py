"""One error class per meaning, each with a machine-readable code."""

from __future__ import annotations


class FlotaError(Exception):
    code = "flota_error"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class ConfigError(FlotaError):
    """The environment does not describe a runnable worker; the message names each variable."""

    code = "config_error"


class ValidationError(FlotaError):
    """A message from the master failed its schema; it is logged and dropped."""

    code = "validation_error"


class ProviderError(FlotaError):
    """A provider failed; the message never carries a key."""

    code = "provider_error"


ABORTED_CODE = "aborted"
