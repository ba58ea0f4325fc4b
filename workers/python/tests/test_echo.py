import asyncio
import time
import unittest

from flota_worker.messages import Params
from flota_worker.providers.base import GenerateRequest
from flota_worker.providers.echo import EchoProvider, chunk_delay


def request(prompt: str, continue_from: str | None = None, stop: list[str] | None = None) -> GenerateRequest:
    return GenerateRequest(
        model="echo",
        prompt=prompt,
        params=Params(stop=stop),
        started_at=int(time.time() * 1000),
        continue_from=continue_from,
    )


class EchoTest(unittest.TestCase):
    def generate(self, provider: EchoProvider, req: GenerateRequest) -> tuple[list[str], str]:
        pieces: list[str] = []
        result = asyncio.run(provider.generate(req, pieces.append))
        return pieces, result.text

    def test_answers_in_chunks_of_chunk_size(self) -> None:
        pieces, text = self.generate(EchoProvider(0, 8), request("conformance says hello"))
        self.assertEqual(text, "echo: conformance says hello")
        self.assertEqual(pieces, ["echo: co", "nformanc", "e says h", "ello"])

    def test_continues_with_only_what_follows(self) -> None:
        pieces, text = self.generate(EchoProvider(0, 8), request("hello world", continue_from="echo: hel"))
        self.assertEqual(text, "lo world")
        self.assertEqual("".join(pieces), "lo world")

    def test_stops_before_a_stop_sequence(self) -> None:
        _, text = self.generate(EchoProvider(0, 8), request("one. two", stop=["."]))
        self.assertEqual(text, "echo: one")

    def test_paces_chunk_i_at_i_plus_one_delays(self) -> None:
        begun = time.monotonic()
        pieces, _ = self.generate(EchoProvider(20, 8), request("x" * 18))  # 24 characters: 3 chunks
        self.assertEqual(len(pieces), 3)
        self.assertGreaterEqual(time.monotonic() - begun, 0.055)

    def test_jitter_is_drawn_within_bounds(self) -> None:
        self.assertEqual(chunk_delay(40, 0), 40)
        self.assertEqual(chunk_delay(40, 10, lambda: 0.999), 50)
        self.assertEqual(chunk_delay(40, 10, lambda: 0.0), 40)


if __name__ == "__main__":
    unittest.main()
