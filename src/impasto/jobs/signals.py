"""Signals to a job: Ctrl-C, SIGTERM and SIGHUP ask a :class:`~impasto.jobs.JobControl` to stop at the
next step boundary (where the run's state is whole and is checkpointed)."""

from __future__ import annotations

import signal
from types import FrameType
from typing import Any

from impasto.jobs.run import JobControl


class StopSignals:
    """While entered, SIGINT, SIGTERM and SIGHUP call ``control.stop(NAME)`` instead of killing the
    process; a second signal while the run is saving changes nothing, so the save is never cut short."""

    SIGNALS = tuple(s for s in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)) if s is not None)

    def __init__(self, control: JobControl | None = None) -> None:
        self.control = control or JobControl()
        self.received: int | None = None
        self._old: dict[int, Any] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is None:
            self.received = signum
            self.control.stop(signal.Signals(signum).name)

    def __enter__(self) -> StopSignals:
        for s in self.SIGNALS:
            try:
                self._old[s] = signal.signal(s, self._handle)
            except ValueError:  # not the main thread: leave the process's handlers alone
                break
        return self

    def __exit__(self, *exc: object) -> None:
        for s, old in self._old.items():
            signal.signal(s, old)

    @property
    def name(self) -> str:
        return signal.Signals(self.received).name if self.received is not None else ""


__all__ = ["StopSignals"]
