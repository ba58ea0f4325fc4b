"""
What the worker does with a control message, and how it answers: a control
that carries an id is acknowledged in the online record republished at
once (`ack`), with a heartbeat out of turn.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from .log import Logger
from .messages import Cancel, Configure, Control, Drain, Resume, Shutdown
from .task_runner import TaskRunner


@dataclass
class LiveSettings:
    """What a `config` control may change, as the online record advertises it."""

    slots: int
    models: list[str]
    weight: int
    labels: dict[str, str] = field(default_factory=dict)


class ControlHandler:
    def __init__(
        self,
        runner: TaskRunner,
        settings: LiveSettings,
        announce: Callable[[dict[str, Any] | None], None],
        shutdown: Callable[[bool], None],
        log: Logger,
    ) -> None:
        self.runner = runner
        self.settings = settings
        self._announce = announce
        self._shutdown = shutdown
        self.log = log

    def _ack(self, control_id: str | None, error: str | None = None) -> None:
        if control_id is None:
            self._announce(None)
            return
        ack: dict[str, Any] = {"id": control_id, "ok": error is None}
        if error is not None:
            ack["error"] = error
        self._announce(ack)

    def __call__(self, control: Control) -> None:
        match control:
            case Cancel(task_id=task_id, attempt=attempt):
                self.runner.cancel(task_id, attempt)
            case Drain(id=control_id):
                self.runner.set_draining(True)
                self._ack(control_id)
            case Resume(id=control_id):
                self.runner.set_draining(False)
                self._ack(control_id)
            case Shutdown(id=control_id, restart=restart):
                self.log.info("shutdown requested by the master", restart=restart)
                self.runner.stop_intake()
                self._ack(control_id)
                self._shutdown(restart)
            case Configure(id=control_id, config=config):
                self.runner.reconfigure(config.slots, config.models)
                if config.slots is not None:
                    self.settings.slots = config.slots
                if config.models is not None:
                    self.settings.models = list(config.models)
                if config.weight is not None:
                    self.settings.weight = config.weight
                if config.labels is not None:
                    self.settings.labels = dict(config.labels)
                self.log.info("live config applied", slots=self.settings.slots, models=self.settings.models)
                self._ack(control_id)
