"""
Reports go to the master over one long-lived Connect stream (docs/PROTOCOL.md
§ gRPC › Connect): chunks and results of every attempt, what one turn of the
event loop gathered in one WorkerReports message, and the master's answers
back. A result the master has not answered when the stream breaks, or one
answered `store_unavailable`, is sent again with backoff until its deadline
plus REPORT_GRACE_MS. A refused chunk makes the attempt's refusal final.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Callable

import grpc

from .log import Logger

REPORT_GRACE_MS = 5_000
RETRY_BASE_MS, RETRY_MAX_MS = 200, 2_000
MAX_REPORTS_PER_MESSAGE = 1_024
MAX_CHUNK_CHARS = 64 * 1024
MAX_REFUSED_ATTEMPTS = 1_024
RESEND_REASON = "store_unavailable"
# How long closing waits for reports still queued to be written.
CLOSE_WAIT_S = 1.0
REFUSED_STATUSES = frozenset(
    (
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.UNIMPLEMENTED,
    )
)
CHANNEL_OPTIONS = [
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.initial_reconnect_backoff_ms", 250),
    ("grpc.max_reconnect_backoff_ms", 2_000),
]


def backoff_ms(tries: int) -> float:
    """Full jitter under a cap that doubles from RETRY_BASE_MS to RETRY_MAX_MS."""
    return random.uniform(0, min(RETRY_MAX_MS, RETRY_BASE_MS * 2**tries))


def attempt_key(task_id: str, attempt: int) -> str:
    return f"{task_id}#{attempt}"


@dataclass
class _Pending:
    result: Any
    deadline: int
    done: asyncio.Future[Any]
    tries: int = 0
    timers: list[asyncio.TimerHandle] = field(default_factory=list)


class AttemptStream:
    """One attempt's chunks, seq 0, 1, 2, …, then its result."""

    def __init__(self, reporter: "Reporter", task_id: str, attempt: int, lease: str, deadline: int) -> None:
        self._reporter = reporter
        self.task_id, self.attempt, self.lease, self.deadline = task_id, attempt, lease, deadline
        self.key = attempt_key(task_id, attempt)
        self.seq = 0
        self.pieces = 0

    def write(self, text: str) -> None:
        self.pieces += 1
        if text == "" or self.key in self._reporter.refused:
            return
        pb = self._reporter.pb
        for at in range(0, len(text), MAX_CHUNK_CHARS):
            chunk = pb.TaskChunk(
                task_id=self.task_id,
                attempt=self.attempt,
                lease=self.lease,
                seq=self.seq,
                text=text[at : at + MAX_CHUNK_CHARS],
            )
            self._reporter.send(pb.WorkerReport(chunk=chunk))
            self.seq += 1

    async def finish(self, result: Any) -> Any:
        """The master's answer to the result (undefined when it never came)."""
        refusal = self._reporter.refused.get(self.key)
        if refusal is not None and refusal.reason != RESEND_REASON:
            return refusal  # the master refused the chunks: it would refuse the result the same way
        return await self._reporter.report(result, self.deadline)


class Reporter:
    def __init__(
        self,
        pb: ModuleType,
        pb_grpc: ModuleType,
        address: str,
        worker_id: str,
        credential: str,
        log: Logger,
        credentials: grpc.ChannelCredentials | None = None,
        on_refused: Callable[[str], None] | None = None,
    ) -> None:
        self.pb = pb
        self._log = log.child(component="grpc-link")
        self._metadata = (("authorization", f"Bearer {credential}"), ("x-flota-worker-id", worker_id))
        self._channel = (
            grpc.aio.secure_channel(address, credentials, options=CHANNEL_OPTIONS)
            if credentials is not None
            else grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS)
        )
        self._stub = pb_grpc.MasterStub(self._channel)
        self._on_refused = on_refused
        self._call: Any = None
        self._outbox: list[Any] = []
        self._flush_queued = False
        self._writes: asyncio.Queue[Any] = asyncio.Queue()
        self._writer = asyncio.get_running_loop().create_task(self._write_loop())
        self._pending: dict[str, _Pending] = {}
        self.refused: OrderedDict[str, Any] = OrderedDict()
        self._reconnects = 0
        self._reconnect: asyncio.TimerHandle | None = None
        self._closed = False

    def open_stream(self, task_id: str, attempt: int, lease: str, deadline: int) -> AttemptStream:
        return AttemptStream(self, task_id, attempt, lease, deadline)

    def send(self, report: Any) -> None:
        """Reports leave together, once per turn of the event loop."""
        if self._closed:
            return
        self._outbox.append(report)
        if not self._flush_queued:
            self._flush_queued = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_queued = False
        while self._outbox:
            batch, self._outbox = self._outbox[:MAX_REPORTS_PER_MESSAGE], self._outbox[MAX_REPORTS_PER_MESSAGE:]
            self._writes.put_nowait(self.pb.WorkerReports(reports=batch))

    async def _write_loop(self) -> None:
        while True:
            message = await self._writes.get()
            call = self._call or self._open()
            try:
                await call.write(message)
            except Exception as error:  # noqa: BLE001 - the reader sees the break and resends results
                self._log.debug("report not written: stream broken", err=str(error))

    def _open(self) -> Any:
        call = self._stub.Connect(metadata=self._metadata)
        self._call = call
        asyncio.get_running_loop().create_task(self._read_loop(call))
        return call

    async def _read_loop(self, call: Any) -> None:
        code: grpc.StatusCode | None = None
        try:
            async for message in call:
                self._on_acks(message)
        except asyncio.CancelledError:
            return
        except grpc.aio.AioRpcError as error:
            code = error.code()
            self._log.debug("report stream failed", code=str(code), err=error.details())
        except Exception as error:  # noqa: BLE001
            self._log.debug("report stream failed", err=str(error))
        if self._call is call:
            self._call = None
            self._on_broken(code)

    def _on_acks(self, message: Any) -> None:
        self._reconnects = 0
        for ack in message.acks:
            key = attempt_key(ack.task_id, ack.attempt)
            if not ack.final:
                self.refused[key] = ack
                while len(self.refused) > MAX_REFUSED_ATTEMPTS:
                    self.refused.popitem(last=False)
                if self._on_refused is not None:
                    self._on_refused(key)
                continue
            entry = self._pending.get(key)
            if entry is None:
                continue
            if ack.accepted or ack.reason != RESEND_REASON:
                self._settle(key, ack)
                continue
            # Kept the lease, could not store: the same result again after a pause.
            delay = backoff_ms(entry.tries) / 1000
            entry.tries += 1
            loop = asyncio.get_running_loop()
            entry.timers.append(loop.call_later(delay, self.send, self.pb.WorkerReport(result=entry.result)))

    def _on_broken(self, code: grpc.StatusCode | None) -> None:
        if self._closed:
            return
        if code in REFUSED_STATUSES:
            self._log.error(
                "the master refused this worker's report stream: check WORKER_TOKEN",
                code=str(code),
                results=len(self._pending),
            )
            for key in list(self._pending):
                self._settle(key, None)
            return
        if not self._pending:
            return  # opened again with the next report
        delay = backoff_ms(self._reconnects) / 1000
        self._reconnects += 1
        if self._reconnect is not None:
            self._reconnect.cancel()
        self._reconnect = asyncio.get_running_loop().call_later(delay, self._resend_all)

    def _resend_all(self) -> None:
        self._reconnect = None
        for entry in self._pending.values():
            self.send(self.pb.WorkerReport(result=entry.result))

    def _settle(self, key: str, ack: Any) -> None:
        entry = self._pending.pop(key, None)
        if entry is None:
            return
        for timer in entry.timers:
            timer.cancel()
        if not entry.done.done():
            entry.done.set_result(ack)

    async def report(self, result: Any, deadline: int) -> Any:
        """Sends a result; resolves with the master's final answer, or None when none came in time."""
        key = attempt_key(result.task_id, result.attempt)
        self._settle(key, None)  # a result sent twice: the newer one counts
        loop = asyncio.get_running_loop()
        entry = _Pending(result=result, deadline=deadline, done=loop.create_future())
        stop_in = max(0.0, (deadline + REPORT_GRACE_MS) / 1000 - time.time())
        entry.timers.append(loop.call_later(stop_in, self._expire, key))
        self._pending[key] = entry
        self.send(self.pb.WorkerReport(result=result))
        return await entry.done

    def _expire(self, key: str) -> None:
        if key in self._pending:
            self._log.warn("result could not be delivered", key=key)
            self._settle(key, None)

    async def close(self) -> None:
        """Half-closes the stream so the master answers what is pending, then closes the channel."""
        self._flush()
        give_up = time.monotonic() + CLOSE_WAIT_S
        while not self._writes.empty() and time.monotonic() < give_up:
            await asyncio.sleep(0.01)
        self._closed = True
        for key in list(self._pending):
            self._settle(key, None)
        if self._reconnect is not None:
            self._reconnect.cancel()
        self._writer.cancel()
        call, self._call = self._call, None
        if call is not None:
            try:
                await asyncio.wait_for(call.done_writing(), 1.0)
            except Exception:  # noqa: BLE001 - closing anyway
                pass
        await self._channel.close(grace=0.5)
