"""
Runs assignments on the provider, at most `slots` at once (the one owner of
an attempt's life on this worker). An assignment it cannot take (draining,
unknown model, past its deadline, every slot busy) is answered with an error
result, never dropped, so the master can requeue at once. A duplicate
delivery of the same (taskId, attempt) runs once.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from .errors import ProviderError
from .grpc_link import Reporter
from .log import Logger
from .messages import Assignment
from .providers import GenerateRequest, Provider, Usage
from .providers.base import scrub_secrets
from .providers.echo import approx_tokens

SEEN_LIMIT = 10_000
STOP_MESSAGES = {
    "cancelled": "cancelled by the master",
    "deadline_exceeded": "task deadline exceeded",
    "shutdown": "worker shutting down",
}


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class _Running:
    assignment: Assignment
    generation: asyncio.Task[Any] | None = None
    stop_reason: str | None = None


class TaskRunner:
    def __init__(
        self, worker_id: str, slots: int, models: list[str], provider: Provider, reporter: Reporter, log: Logger
    ) -> None:
        self.worker_id = worker_id
        self.slots = slots
        self.models = set(models)
        self.provider = provider
        self.reporter = reporter
        self.log = log.child(component="task-runner")
        self.draining = False
        self.closed = False
        self._running: dict[str, _Running] = {}
        # Finished, result not yet answered: listed in heartbeats so the master does not take it back.
        self._reporting: dict[str, Assignment] = {}
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._work: set[asyncio.Task[Any]] = set()

    @property
    def is_draining(self) -> bool:
        return self.draining or self.closed

    def set_draining(self, draining: bool) -> None:
        self.draining = draining
        self.log.info("draining: no new work" if draining else "resumed: taking work", draining=draining)

    def reconfigure(self, slots: int | None, models: list[str] | None) -> None:
        """New assignments see the new settings at once; running attempts go on."""
        if slots is not None:
            self.slots = slots
        if models is not None:
            self.models = set(models)

    def stop_intake(self) -> None:
        self.closed = True

    def free_slots(self) -> int:
        return max(0, self.slots - len(self._running))

    def active(self) -> list[dict[str, Any]]:
        attempts = [r.assignment for r in self._running.values()] + list(self._reporting.values())
        return [{"taskId": a.task_id, "attempt": a.attempt, "lease": a.lease} for a in attempts]

    def accept(self, a: Assignment) -> None:
        if a.key in self._seen:
            self.log.debug("duplicate assignment ignored", taskId=a.task_id, attempt=a.attempt)
            return
        self._seen[a.key] = None
        while len(self._seen) > SEEN_LIMIT:
            self._seen.popitem(last=False)
        refusal = self._rejection(a)
        if refusal is not None:
            code, message = refusal
            self.log.warn("assignment refused", taskId=a.task_id, attempt=a.attempt, code=code)
            self._track(self._refuse(a, code, message))
            return
        entry = _Running(a)
        self._running[a.key] = entry
        self.log.info("task started", taskId=a.task_id, attempt=a.attempt, model=a.model)
        self._track(self._run(entry))

    def cancel(self, task_id: str, attempt: int | None) -> bool:
        found = False
        for entry in list(self._running.values()):
            a = entry.assignment
            if a.task_id == task_id and (attempt is None or a.attempt == attempt):
                self._stop(entry, "cancelled")
                found = True
        self.log.info("cancel requested", taskId=task_id, attempt=attempt, found=found)
        return found

    def refused_by_master(self, key: str) -> None:
        """The master refused the attempt's chunks: a refusal is final, stop working on it."""
        entry = self._running.get(key)
        if entry is not None:
            self._stop(entry, "cancelled")

    def abort_all(self) -> None:
        for entry in list(self._running.values()):
            self._stop(entry, "shutdown")

    async def idle(self, timeout_s: float) -> bool:
        """True once every task has finished and every result has been answered; False after `timeout_s`."""
        loop = asyncio.get_running_loop()
        give_up = loop.time() + timeout_s
        while self._work:
            remaining = give_up - loop.time()
            if remaining <= 0:
                return False
            # asyncio.wait, not wait_for(gather): a timeout must not cancel the work itself.
            await asyncio.wait(set(self._work), timeout=remaining)
        return True

    def _stop(self, entry: _Running, reason: str) -> None:
        if entry.stop_reason is None:
            entry.stop_reason = reason
        if entry.generation is not None:
            entry.generation.cancel()

    def _track(self, work: Any) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._work.add(task)

        def done(t: asyncio.Task[Any]) -> None:
            self._work.discard(t)
            if not t.cancelled() and t.exception() is not None:
                self.log.error("task runner error", err=repr(t.exception()))

        task.add_done_callback(done)

    def _rejection(self, a: Assignment) -> tuple[str, str] | None:
        if self.is_draining:
            return "draining", "worker is draining"
        if a.model not in self.models:
            served = ", ".join(sorted(self.models))
            return "model_unsupported", f"model {a.model} is not served by this worker (serves: {served})"
        if a.deadline <= now_ms():
            return "deadline_exceeded", "assignment arrived after its deadline"
        if len(self._running) >= self.slots:
            return "worker_full", f"all {self.slots} slots are busy"
        return None

    def _result(self, a: Assignment, started_at: int, **outcome: Any) -> Any:
        finished_at = now_ms()
        return self.reporter.pb.TaskResult(
            task_id=a.task_id,
            attempt=a.attempt,
            lease=a.lease,
            worker_id=self.worker_id,
            model=a.model,
            started_at=started_at,
            finished_at=finished_at,
            processing_ms=max(0, finished_at - started_at),
            **outcome,
        )

    async def _refuse(self, a: Assignment, code: str, message: str) -> None:
        ack = await self.reporter.report(self._result(a, now_ms(), error=message, error_code=code), a.deadline)
        self._log_ack(a, ack)

    async def _run(self, entry: _Running) -> None:
        a = entry.assignment
        started_at = now_ms()
        stream = self.reporter.open_stream(a.task_id, a.attempt, a.lease, a.deadline)
        loop = asyncio.get_running_loop()
        timer = loop.call_later(max(0.0, (a.deadline - started_at) / 1000), self._stop, entry, "deadline_exceeded")
        # The master sends a text to continue only to a worker that said it can.
        continue_from = a.continue_from if self.provider.continues else None
        request = GenerateRequest(
            model=a.model,
            prompt=a.prompt,
            params=a.params,
            started_at=started_at,
            messages=a.messages,
            api_key=a.api_key,
            continue_from=continue_from,
        )
        outcome: dict[str, Any]
        try:
            entry.generation = loop.create_task(self.provider.generate(request, stream.write))
            if entry.stop_reason is not None:
                entry.generation.cancel()
            generated = await entry.generation
            # Counted here when the provider gave none (marked as estimated).
            usage = generated.usage or Usage(approx_tokens(a.prompt), approx_tokens(generated.text), estimated=True)
            counts = self.reporter.pb.Usage(
                input_tokens=usage.input_tokens, output_tokens=usage.output_tokens, estimated=usage.estimated
            )
            # The result is the whole answer: the continued text, then what this attempt added.
            outcome = {"text": (continue_from or "") + generated.text, "usage": counts}
        except asyncio.CancelledError:
            if entry.stop_reason is None:
                raise  # the runner itself is being torn down
            outcome = {"error": STOP_MESSAGES[entry.stop_reason], "error_code": entry.stop_reason}
        except Exception as error:  # noqa: BLE001 - every provider failure becomes a result
            outcome = self._describe_failure(entry, error)
        finally:
            timer.cancel()
            self._running.pop(a.key, None)
            self._reporting[a.key] = a
        try:
            result = self._result(a, started_at, **outcome)
            if "error" in outcome:
                self.log.warn("task failed", taskId=a.task_id, attempt=a.attempt, errorCode=outcome["error_code"])
            else:
                self.log.info("task finished", taskId=a.task_id, attempt=a.attempt, processingMs=result.processing_ms)
            self._log_ack(a, await stream.finish(result))
        finally:
            self._reporting.pop(a.key, None)

    def _describe_failure(self, entry: _Running, error: Exception) -> dict[str, Any]:
        if entry.stop_reason is not None:
            return {"error": STOP_MESSAGES[entry.stop_reason], "error_code": entry.stop_reason}
        message = scrub_secrets(str(error), [entry.assignment.api_key]) or "provider failed"
        code = error.code if isinstance(error, ProviderError) else "provider_error"
        return {"error": message, "error_code": code}

    def _log_ack(self, a: Assignment, ack: Any) -> None:
        if ack is None:
            self.log.warn("master unreachable: result not delivered", taskId=a.task_id, attempt=a.attempt)
        elif ack.accepted:
            self.log.info("master accepted the result", taskId=a.task_id, attempt=a.attempt)
        else:
            self.log.warn("master rejected the result", taskId=a.task_id, attempt=a.attempt, reason=ack.reason)
