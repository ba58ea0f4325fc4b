"""The MQTT link hands what paho's network thread hears to the asyncio loop, and that thread lives on."""

import asyncio
import io
import json
import socket
import unittest

from flota_worker.log import Logger
from flota_worker.mqtt_link import MqttLink, Topics


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class MqttLinkThreadTest(unittest.IsolatedAsyncioTestCase):
    async def asyncSetUp(self) -> None:
        self.stream = io.StringIO()
        log = Logger("w-1", "warn", stream=self.stream)
        # Nothing listens there: paho retries in the background, the test calls its callbacks itself.
        self.link = MqttLink(
            f"mqtt://127.0.0.1:{closed_port()}",
            "w-1",
            "w-1",
            "fwt1.w-1.x",
            Topics("flota/v1", "w-1"),
            dict,
            lambda _payload: None,
            lambda _payload: None,
            log,
        )

    async def asyncTearDown(self) -> None:
        await asyncio.to_thread(self.link.client.loop_stop)

    async def lines(self) -> list[dict]:
        for _ in range(100):
            if self.stream.getvalue():
                break
            await asyncio.sleep(0.01)
        return [json.loads(line) for line in self.stream.getvalue().splitlines()]

    async def test_a_lost_connection_is_logged_without_raising_on_paho_thread(self) -> None:
        # An exception here would end paho's thread: the worker would never reconnect.
        await asyncio.to_thread(self.link._on_disconnect, self.link.client, None, 7)
        [line] = await self.lines()
        self.assertEqual((line["msg"], line["rc"]), ("broker connection lost", 7))

    async def test_a_message_on_another_topic_is_logged_and_dropped(self) -> None:
        class Message:
            topic = "flota/v1/workers/w-2/tasks"
            payload = b"{}"

        await asyncio.to_thread(self.link._on_message, self.link.client, None, Message())
        [line] = await self.lines()
        self.assertEqual(line["msg"], "mqtt message dropped: unexpected topic")
        self.assertEqual(line["topic"], "flota/v1/workers/w-2/tasks")


if __name__ == "__main__":
    unittest.main()
