"""
Any OpenAI-compatible chat server (Ollama, vLLM, llama.cpp, OpenAI):
POST {base_url}/chat/completions with `stream: true`, deltas over SSE, as
worker/src/providers/openai.ts sends it. The blocking HTTP read runs on a
thread of its own; a stopped attempt shuts its socket down, which ends it.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
import threading
from typing import Any, Iterator
from urllib.parse import urlsplit

from ..errors import ProviderError
from .base import ChunkHandler, GenerateRequest, GenerateResult, Usage, scrub_secrets

CONNECT_TIMEOUT_S = 30.0


def build_messages(request: GenerateRequest) -> list[dict[str, str]]:
    messages = [{"role": "user", "content": request.prompt}]
    if request.messages:
        messages = [{"role": m.role, "content": m.content} for m in request.messages]
        last = messages[-1]
        if request.prompt and not (last["role"] == "user" and last["content"] == request.prompt):
            messages.append({"role": "user", "content": request.prompt})
    # Assistant prefill: the answer so far, for the server to carry on.
    if request.continue_from:
        messages.append({"role": "assistant", "content": request.continue_from})
    return messages


def sse_data(lines: Iterator[bytes]) -> Iterator[str]:
    """The `data:` payloads of a server-sent-events body, one per event."""
    data: list[str] = []
    for raw in lines:
        line = raw.decode("utf-8").rstrip("\r\n")
        if line == "":
            if data:
                yield "\n".join(data)
            data = []
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
    if data:
        yield "\n".join(data)


class OpenAiProvider:
    name = "openai"

    def __init__(self, base_url: str, api_key: str | None = None, continuation: str = "off") -> None:
        self.url = urlsplit(base_url.rstrip("/") + "/chat/completions")
        self.api_key = api_key
        self.continuation = continuation
        self.continues = continuation != "off"

    def _body(self, request: GenerateRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": request.model,
            "messages": build_messages(request),
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        params = request.params
        if params.temperature is not None:
            body["temperature"] = params.temperature
        if params.max_tokens is not None:
            body["max_tokens"] = params.max_tokens
        if params.stop is not None:
            body["stop"] = params.stop
        if request.continue_from and self.continuation == "vllm":
            body["continue_final_message"] = True
            body["add_generation_prompt"] = False
        return body

    def _connection(self) -> http.client.HTTPConnection:
        host, port = self.url.hostname or "localhost", self.url.port
        if self.url.scheme == "https":
            return http.client.HTTPSConnection(host, port, timeout=CONNECT_TIMEOUT_S)
        return http.client.HTTPConnection(host, port, timeout=CONNECT_TIMEOUT_S)

    async def generate(self, request: GenerateRequest, on_chunk: ChunkHandler) -> GenerateResult:
        key = request.api_key or self.api_key
        secrets = [key, self.api_key, request.api_key]
        headers = {"content-type": "application/json", "accept": "text/event-stream"}
        if key:
            headers["authorization"] = f"Bearer {key}"
        body = json.dumps(self._body(request)).encode("utf-8")
        path = self.url.path + (f"?{self.url.query}" if self.url.query else "")
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        conn = self._connection()

        def put(kind: str, value: Any) -> None:
            try:
                loop.call_soon_threadsafe(events.put_nowait, (kind, value))
            except RuntimeError:
                pass  # the loop is closed (the worker is exiting): no one reads this stream any more

        def read() -> None:
            try:
                conn.request("POST", path, body=body, headers=headers)
                response = conn.getresponse()
                if response.status != 200:
                    detail = response.read(300).decode("utf-8", "replace")
                    hint = " (the API key was rejected or is missing)" if response.status in (401, 403) else ""
                    put("error", f"OpenAI-compatible server answered HTTP {response.status}{hint}: {detail}")
                    return
                if conn.sock is not None:
                    conn.sock.settimeout(None)  # a slow model may pause; the deadline stops it
                for data in sse_data(iter(response.readline, b"")):
                    put("data", data)
                put("end", None)
            except Exception as error:  # noqa: BLE001 - any failure of the request is the provider's
                put("error", f"OpenAI-compatible request failed: {error}")

        threading.Thread(target=read, name="openai-stream", daemon=True).start()
        text, usage = "", None
        try:
            while True:
                kind, value = await events.get()
                if kind == "error":
                    raise ProviderError(scrub_secrets(value, secrets))
                if kind == "end" or value.strip() == "[DONE]":
                    break
                try:
                    event = json.loads(value)
                except json.JSONDecodeError as error:
                    raise ProviderError("OpenAI-compatible server sent an unreadable stream event") from error
                if event.get("error"):
                    message = (event["error"] or {}).get("message", "unknown")
                    raise ProviderError(scrub_secrets(f"stream error: {message}", secrets))
                choices = event.get("choices") or []
                piece = ((choices[0] or {}).get("delta") or {}).get("content") if choices else None
                if piece:
                    text += piece
                    on_chunk(piece)
                counts = event.get("usage")
                if counts:
                    usage = Usage(counts.get("prompt_tokens") or 0, counts.get("completion_tokens") or 0)
        finally:
            # Ends the reading thread at once when the attempt stopped early.
            if conn.sock is not None:
                try:
                    conn.sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            conn.close()
        return GenerateResult(text=text, usage=usage)
