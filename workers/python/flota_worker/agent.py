"""
The worker's lifecycle: register (retained online record) → listen
(assignments, control) → heartbeat → unregister (retained offline record),
and the order it stops in: intake, in-flight work (finished, or aborted
after SHUTDOWN_GRACE_MS and handed back), heartbeat, broker, master link.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import time
from typing import Any

import grpc

from . import proto
from .config import WorkerConfig
from .controls import ControlHandler, LiveSettings
from .enroll import enroll
from .errors import ValidationError
from .grpc_link import Reporter
from .log import Logger, redact_url
from .messages import MAX_ASSIGNMENT_BYTES, MAX_MQTT_PAYLOAD_BYTES, decode_json, parse_assignment, parse_control
from .mqtt_link import MqttLink, Topics
from .providers import Provider, create_provider
from .system import CpuSampler, memory
from .task_runner import TaskRunner

VERSION = "0.1.0-python"
RESTART_EXIT_CODE = 75
FIRST_CONNECT_WAIT_S = 10.0
ABORT_REPORT_WAIT_S = 5.0


def _channel_credentials(config: WorkerConfig) -> grpc.ChannelCredentials | None:
    if not config.grpc_tls:
        return None
    return grpc.ssl_channel_credentials(
        root_certificates=config.tls_ca.encode() if config.tls_ca else None,
        private_key=config.tls_key.encode() if config.tls_key else None,
        certificate_chain=config.tls_cert.encode() if config.tls_cert else None,
    )


class Agent:
    # Made in run(), once the generated gRPC code is loaded.
    provider: Provider
    settings: LiveSettings
    reporter: Reporter
    runner: TaskRunner
    controls: ControlHandler
    link: MqttLink

    def __init__(self, config: WorkerConfig, log: Logger) -> None:
        self.config = config
        self.log = log.child(workerId=config.worker_id)
        self._root_log = log
        self.started_at = int(time.time() * 1000)
        self.restart_requested = False
        self._last_ack: dict[str, Any] | None = None
        self._stop = asyncio.Event()

    def request_stop(self, restart: bool = False) -> None:
        self.restart_requested = self.restart_requested or restart
        self._stop.set()

    def _online_record(self) -> dict[str, Any]:
        s = self.settings
        record: dict[str, Any] = {
            "state": "online",
            "id": self.config.worker_id,
            "kind": self.config.kind,
            "models": list(s.models),
            "providers": [self.provider.name],
            "catalog": [{"name": m, "provider": self.provider.name} for m in s.models],
            "continuation": self.provider.continues,
            "slots": s.slots,
            "labels": dict(s.labels),
            "weight": s.weight,
            "version": VERSION,
            "host": socket.gethostname()[:256],
            "heartbeatMs": self.config.heartbeat_ms,
            "startedAt": self.started_at,
            "draining": self.runner.is_draining,
        }
        if self._last_ack is not None:
            record["ack"] = self._last_ack
        return record

    def _heartbeat(self) -> dict[str, Any]:
        return {
            "id": self.config.worker_id,
            "ts": int(time.time() * 1000),
            "cpuPct": self._cpu(),
            "mem": memory(),
            "gpus": [],
            "freeSlots": self.runner.free_slots(),
            "active": self.runner.active(),
            "draining": self.runner.is_draining,
        }

    def _beat(self) -> None:
        self.link.publish_heartbeat(self._heartbeat())

    async def _heartbeats(self) -> None:
        """On a fixed schedule, so a late beat does not push the next ones back."""
        every = self.config.heartbeat_ms / 1000
        due = time.monotonic()
        while True:
            self._beat()
            # After a long stall (the process was paused), beat on from now instead of catching up.
            due = max(due + every, time.monotonic())
            await asyncio.sleep(max(0.0, due - time.monotonic()))

    def _on_assignment(self, payload: bytes) -> None:
        try:
            assignment = parse_assignment(decode_json(payload, MAX_ASSIGNMENT_BYTES))
        except ValidationError as error:
            self.log.warn("assignment dropped: invalid", reason=str(error), bytes=len(payload))
            return
        self.runner.accept(assignment)

    def _on_control(self, payload: bytes) -> None:
        try:
            control = parse_control(decode_json(payload, MAX_MQTT_PAYLOAD_BYTES))
        except ValidationError as error:
            self.log.warn("control dropped: invalid", reason=str(error), bytes=len(payload))
            return
        self.controls(control)

    def _announce(self, ack: dict[str, Any] | None) -> None:
        if ack is not None:
            self._last_ack = ack
        self.link.publish_status()
        self._beat()

    async def run(self) -> int:
        config = self.config
        pb, pb_grpc = proto.load()
        self.provider = create_provider(config)
        channel_credentials = _channel_credentials(config)
        credential = config.worker_token or await enroll(
            pb, pb_grpc, config.master_grpc, config.worker_id, config.join_token or "", self.log, channel_credentials
        )
        self.settings = LiveSettings(
            slots=config.slots, models=list(config.models), weight=config.weight, labels=dict(config.labels)
        )
        self.reporter = Reporter(
            pb,
            pb_grpc,
            config.master_grpc,
            config.worker_id,
            credential,
            self.log,
            credentials=channel_credentials,
            on_refused=lambda key: self.runner.refused_by_master(key),
        )
        self.runner = TaskRunner(
            config.worker_id, config.slots, config.models, self.provider, self.reporter, self.log
        )
        self.controls = ControlHandler(self.runner, self.settings, self._announce, self.request_stop, self.log)
        self._cpu = CpuSampler()
        self.link = MqttLink(
            config.mqtt_url,
            config.worker_id,
            # The broker lets a worker act only as the id it logs in with.
            config.mqtt_username or config.worker_id,
            config.mqtt_password or credential,
            Topics(config.mqtt_prefix, config.worker_id),
            self._online_record,
            self._on_assignment,
            self._on_control,
            self.log,
            tls={"ca": config.tls_ca, "cert": config.tls_cert, "key": config.tls_key},
        )
        self._root_log.attach_publisher(self.link.publish_log)
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._on_signal, signum)
        heartbeat = loop.create_task(self._heartbeats())
        stopped = loop.create_task(self._stop.wait())
        await asyncio.wait(
            {self.link.first_connect, stopped}, timeout=FIRST_CONNECT_WAIT_S, return_when=asyncio.FIRST_COMPLETED
        )
        stopped.cancel()
        if not self.link.first_connect.done():
            self.log.warn("broker not reachable yet", url=redact_url(config.mqtt_url))
        self.log.info("worker started", kind=config.kind, models=config.models, slots=config.slots)
        await self._stop.wait()
        await self._shutdown(heartbeat)
        return RESTART_EXIT_CODE if self.restart_requested else 0

    def _on_signal(self, signum: int) -> None:
        if self._stop.is_set():
            raise SystemExit(130)  # a second signal: leave at once
        self.log.info("signal received: shutting down", signal=signal.Signals(signum).name)
        self.request_stop()

    async def _shutdown(self, heartbeat: asyncio.Task[None]) -> None:
        self.log.info("worker stopping")
        self.runner.stop_intake()
        if not await self.runner.idle(self.config.shutdown_grace_ms / 1000):
            self.log.warn("in-flight tasks did not finish in time: aborting", active=len(self.runner.active()))
            self.runner.abort_all()
            await self.runner.idle(ABORT_REPORT_WAIT_S)
        heartbeat.cancel()
        self.log.info("worker stopped")
        self._root_log.attach_publisher(None)
        await self.link.shutdown(self.config.worker_id)
        await self.reporter.close()
