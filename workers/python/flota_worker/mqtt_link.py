"""
The worker's MQTT session (docs/PROTOCOL.md § MQTT › Connection): client id
flota-worker-{id}, a persistent session (clean_session False) so QoS 1
assignments sent during a short disconnect arrive afterwards, a retained Last
Will that marks it offline, and on every connect the retained online record
and the two subscriptions. paho runs its network loop on a thread of its
own; every message is handed to the asyncio loop.
"""

from __future__ import annotations

import asyncio
import functools
import socket
import ssl
import tempfile
import time
from typing import Any, Callable
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt

from .log import Logger
from .messages import compact

RECONNECT_S = 0.5
KEEPALIVE_S = 60
OFFLINE_CONFIRM_WAIT_S = 2.0


class Topics:
    def __init__(self, prefix: str, worker_id: str) -> None:
        base = f"{prefix.rstrip('/')}/workers/{worker_id}"
        self.status = f"{base}/status"
        self.heartbeat = f"{base}/heartbeat"
        self.tasks = f"{base}/tasks"
        self.control = f"{base}/control"
        self.log = f"{prefix.rstrip('/')}/logs/{worker_id}"


def _pem_file(text: str) -> str:
    """paho's TLS settings take paths; the configuration holds PEM text."""
    with tempfile.NamedTemporaryFile("w", suffix=".pem", delete=False) as file:
        file.write(text)
        return file.name


class MqttLink:
    def __init__(
        self,
        url: str,
        worker_id: str,
        username: str,
        password: str,
        topics: Topics,
        online_record: Callable[[], dict[str, Any]],
        on_assignment: Callable[[bytes], None],
        on_control: Callable[[bytes], None],
        log: Logger,
        tls: dict[str, str | None] | None = None,
    ) -> None:
        self.topics = topics
        self._online_record = online_record
        self._on_assignment = on_assignment
        self._on_control = on_control
        self._log = log.child(component="mqtt-link")
        self._loop = asyncio.get_running_loop()
        self.first_connect: asyncio.Future[None] = self._loop.create_future()
        self._last_error = ""
        parts = urlsplit(url)
        scheme = parts.scheme
        transport = "websockets" if scheme in ("ws", "wss") else "tcp"
        client = mqtt.Client(
            client_id=f"flota-worker-{worker_id}",
            clean_session=False,
            protocol=mqtt.MQTTv311,
            transport=transport,
        )
        client.username_pw_set(username, password)
        client.will_set(
            topics.status, compact({"state": "offline", "id": worker_id, "reason": "lost"}), qos=1, retain=True
        )
        client.reconnect_delay_set(min_delay=RECONNECT_S, max_delay=RECONNECT_S)
        if transport == "websockets":
            client.ws_set_options(path=parts.path or "/mqtt")
        if scheme in ("mqtts", "wss"):
            tls = tls or {}
            cert, key = tls.get("cert"), tls.get("key")
            client.tls_set(
                ca_certs=_pem_file(tls["ca"]) if tls.get("ca") else None,
                certfile=_pem_file(cert) if cert else None,
                keyfile=_pem_file(key) if key else None,
                cert_reqs=ssl.CERT_REQUIRED,
            )
        client.on_socket_open = self._on_socket_open
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        self.client = client
        default_port = {"mqtt": 1883, "tcp": 1883, "mqtts": 8883, "ws": 80, "wss": 443}[scheme]
        client.connect_async(parts.hostname or "127.0.0.1", parts.port or default_port, keepalive=KEEPALIVE_S)
        client.loop_start()

    # --- paho's thread ---------------------------------------------------------------------

    def _in_loop(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Runs `fn` on the asyncio loop. call_soon_threadsafe takes no keyword arguments: given
        one it raises here, on paho's thread, which then dies and never reconnects."""
        self._loop.call_soon_threadsafe(functools.partial(fn, *args, **kwargs))

    @staticmethod
    def _on_socket_open(_client: mqtt.Client, _userdata: Any, sock: Any) -> None:
        # Without it each small publish waits ~40 ms for Nagle's algorithm.
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except (OSError, AttributeError):
            pass

    def _on_connect(self, client: mqtt.Client, _userdata: Any, flags: dict[str, Any], rc: int) -> None:
        if rc != 0:
            self._warn_once(f"broker refused the login: {mqtt.connack_string(rc)}")
            return
        self._last_error = ""
        client.publish(self.topics.status, compact(self._online_record()), qos=1, retain=True)
        client.subscribe([(self.topics.tasks, 1), (self.topics.control, 1)])
        self._in_loop(self._connected, bool(flags.get("session present")))

    def _on_disconnect(self, _client: mqtt.Client, _userdata: Any, rc: int) -> None:
        if rc != 0:
            self._in_loop(self._log.warn, "broker connection lost", rc=rc)

    def _on_message(self, _client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        payload = bytes(message.payload)
        if message.topic == self.topics.tasks:
            self._in_loop(self._dispatch, self._on_assignment, payload, message.topic)
        elif message.topic == self.topics.control:
            self._in_loop(self._dispatch, self._on_control, payload, message.topic)
        else:
            self._in_loop(self._log.warn, "mqtt message dropped: unexpected topic", topic=message.topic)

    def _warn_once(self, message: str) -> None:
        # While the broker refuses, the same error repeats every reconnect: warn once.
        level = "debug" if message == self._last_error else "warn"
        self._last_error = message
        self._in_loop(getattr(self._log, level), message)

    # --- the asyncio loop --------------------------------------------------------------------

    def _connected(self, session_present: bool) -> None:
        self._log.info("connected to broker", sessionPresent=session_present)
        if not self.first_connect.done():
            self.first_connect.set_result(None)

    def _dispatch(self, handler: Callable[[bytes], None], payload: bytes, topic: str) -> None:
        try:
            handler(payload)
        except Exception as error:  # noqa: BLE001 - one message must not take the worker down
            self._log.error("handler failed", topic=topic, err=repr(error))

    @property
    def connected(self) -> bool:
        return self.client.is_connected()

    def publish_status(self) -> None:
        # Offline, the next connect publishes the record as it is then.
        if self.connected:
            self.client.publish(self.topics.status, compact(self._online_record()), qos=1, retain=True)

    def publish_heartbeat(self, heartbeat: dict[str, Any]) -> None:
        if self.connected:
            self.client.publish(self.topics.heartbeat, compact(heartbeat), qos=0)

    def publish_log(self, line: str) -> None:
        # Only while connected: a log line must not queue up behind a dead link.
        if self.connected:
            self.client.publish(self.topics.log, line.encode("utf-8"), qos=0)

    @staticmethod
    def _confirmed(info: mqtt.MQTTMessageInfo) -> bool:
        try:
            return info.is_published()
        except (RuntimeError, ValueError):
            return False  # the link dropped: it never will be

    async def shutdown(self, worker_id: str) -> None:
        """The retained offline record (reason shutdown), confirmed or given up after 2 s, then a clean disconnect."""
        if self.connected:
            offline = {"state": "offline", "id": worker_id, "reason": "shutdown"}
            info = self.client.publish(self.topics.status, compact(offline), qos=1, retain=True)
            give_up = time.monotonic() + OFFLINE_CONFIRM_WAIT_S
            while not self._confirmed(info) and time.monotonic() < give_up:
                await asyncio.sleep(0.01)
            if not self._confirmed(info):
                self._log.warn("offline status not confirmed by the broker: leaving without it")
        self.client.disconnect()
        await asyncio.to_thread(self.client.loop_stop)
