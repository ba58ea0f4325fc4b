"""The providers this worker runs, chosen by PROVIDER."""

from __future__ import annotations

from ..config import WorkerConfig
from .base import GenerateRequest, GenerateResult, Provider, Usage
from .echo import EchoProvider
from .openai import OpenAiProvider

__all__ = ["GenerateRequest", "GenerateResult", "Provider", "Usage", "create_provider"]


def create_provider(config: WorkerConfig) -> Provider:
    if config.provider == "openai":
        assert config.openai_base_url is not None  # load_config requires it
        return OpenAiProvider(config.openai_base_url, config.openai_api_key, config.openai_continuation)
    return EchoProvider(config.echo_delay_ms, config.echo_chunk_size, config.echo_delay_jitter_ms)
