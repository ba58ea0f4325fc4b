"""The OpenAI-compatible provider against a small streaming server on a free loopback port."""

import asyncio
import json
import threading
import time
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from flota_worker.errors import ProviderError
from flota_worker.messages import Params
from flota_worker.providers.base import GenerateRequest
from flota_worker.providers.openai import OpenAiProvider


class Server(BaseHTTPRequestHandler):
    requests: list[dict[str, Any]] = []

    def log_message(self, *_: Any) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        Server.requests.append({"body": body, "authorization": self.headers.get("authorization")})
        if body["model"] == "missing":
            self.send_response(404)
            self.end_headers()
            self.wfile.write(b"model not found, key sk-abcdefghijklmnopqrstuvwxyz")
            return
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.end_headers()
        for piece in ("Hel", "lo", "!"):
            event = {"choices": [{"delta": {"content": piece}}]}
            self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
            self.wfile.flush()
        usage = {"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 3}}
        self.wfile.write(f"data: {json.dumps(usage)}\n\ndata: [DONE]\n\n".encode())


class OpenAiTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.server = ThreadingHTTPServer(("127.0.0.1", 0), Server)
        threading.Thread(target=cls.server.serve_forever, daemon=True).start()
        cls.base = f"http://127.0.0.1:{cls.server.server_address[1]}/v1"

    @classmethod
    def tearDownClass(cls) -> None:
        cls.server.shutdown()
        cls.server.server_close()

    def request(self, model: str, continue_from: str | None = None) -> GenerateRequest:
        return GenerateRequest(
            model=model,
            prompt="hi",
            params=Params(temperature=0.5, max_tokens=7),
            started_at=int(time.time() * 1000),
            continue_from=continue_from,
        )

    def test_streams_deltas_and_reads_usage(self) -> None:
        pieces: list[str] = []
        provider = OpenAiProvider(self.base, api_key="worker-key", continuation="prefill")
        result = asyncio.run(provider.generate(self.request("m", "So far"), pieces.append))
        self.assertEqual(pieces, ["Hel", "lo", "!"])
        self.assertEqual(result.text, "Hello!")
        self.assertEqual((result.usage.input_tokens, result.usage.output_tokens), (5, 3))
        sent = Server.requests[-1]
        self.assertEqual(sent["authorization"], "Bearer worker-key")
        self.assertEqual(sent["body"]["messages"][-1], {"role": "assistant", "content": "So far"})
        body = sent["body"]
        self.assertEqual((body["temperature"], body["max_tokens"], body["stream"]), (0.5, 7, True))

    def test_an_http_error_is_a_provider_error_without_the_key(self) -> None:
        with self.assertRaises(ProviderError) as caught:
            asyncio.run(OpenAiProvider(self.base).generate(self.request("missing"), lambda _: None))
        self.assertIn("HTTP 404", str(caught.exception))
        self.assertNotIn("sk-abcdefghijklmnop", str(caught.exception))


if __name__ == "__main__":
    unittest.main()
