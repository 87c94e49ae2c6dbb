"""A pool worker process (``python -m impasto.jobs.worker``): started before any job arrives, it imports
torch, loads the VGG weights, says ``ready`` and then runs the jobs its :class:`~impasto.jobs.pool.WorkerPool`
sends, one at a time, keeping the weights loaded.

Protocol, one JSON object per line (see :mod:`impasto.jobs.pool`): the pool writes a job,
``{"run": "impasto.<module>:<function>", "job": {...}, "log": PATH|null}``, and may then write ``cancel``
or ``suspend`` (plain words); the worker writes ``{"type": KIND, ...}`` events: ``ready`` once, then per
job whatever the runner emits, ending with exactly one of :data:`TERMINAL`. The runner is the
front-end's function ``run(job, ctx)`` (ctx: :class:`WorkerContext`); a runner that raises fails its job
with one line, the worker lives on. The end of stdin means the pool is gone (even ``kill -9`` of its
process): the worker exits at once, writing nothing, and a job it was running resumes elsewhere from
its checkpoint. This module is a process of its own, so it writes to its own stdout; nothing else does.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import queue
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Iterator, Sequence
from typing import IO, Any

from impasto.errors import ImpastoError
from impasto.jobs.run import JobControl

EXIT_PARENT_GONE = 3
TERMINAL = ("done", "failed", "cancelled", "suspended")
"""The events that end a job (exactly one per job)."""
RUNNER_PREFIX = "impasto."
"""Runners are named by module path and must live in this package."""


class WorkerContext:
    """What a runner gets besides its job: ``emit`` events, ``control`` (cancel/suspend from the pool,
    as :class:`JobControl` ``cancel()`` / ``stop("suspend")``) and the ``weights`` loaded at start (None:
    none were preloaded)."""

    def __init__(self, channel: _Channel, control: JobControl, weights: Any) -> None:
        self._channel = channel
        self.control = control
        self.weights = weights

    def emit(self, kind: str, **fields: Any) -> None:
        self._channel.emit(kind, **fields)


Runner = Callable[[dict[str, Any], WorkerContext], None]


class _Channel:
    """Events out (stdout), jobs and commands in (stdin, read by a daemon thread)."""

    def __init__(self, out: IO[str], inp: IO[str]) -> None:
        self.out = out
        self.inp = inp
        self.jobs: queue.Queue[tuple[dict[str, Any], JobControl]] = queue.Queue()
        self.control = JobControl()
        self.ended = False
        self._lock = threading.Lock()

    def emit(self, kind: str, **fields: Any) -> None:
        line = json.dumps({"type": kind, **fields}, allow_nan=False, default=str)
        try:
            with self._lock:
                if kind in TERMINAL:
                    self.ended = True
                self.out.write(line + "\n")
                self.out.flush()
        except (BrokenPipeError, OSError, ValueError):
            os._exit(EXIT_PARENT_GONE)  # the pool is gone: nobody to report to

    def start_reader(self) -> None:
        threading.Thread(target=self._read, name="impasto-worker-stdin", daemon=True).start()

    def _read(self) -> None:
        for raw in self.inp:
            line = raw.strip()
            if line == "cancel":
                self.control.cancel()
            elif line == "suspend":
                self.control.stop("suspend")
            elif line:
                try:
                    msg = json.loads(line)
                except ValueError:
                    continue
                if isinstance(msg, dict):
                    # The job's own control exists from the moment its line is read: a cancel that
                    # follows at once is not lost.
                    self.control = JobControl()
                    self.jobs.put((msg, self.control))
        # End of stdin: the pool closed the pipe or died. Stop now, without writing anything: a new
        # pool may already be resuming this job from its checkpoint.
        os._exit(EXIT_PARENT_GONE)

    def next_job(self) -> tuple[dict[str, Any], JobControl]:
        msg, control = self.jobs.get()
        with self._lock:
            self.ended = False
        return msg, control


def _runner(name: Any) -> Runner:
    if not isinstance(name, str) or not name.startswith(RUNNER_PREFIX) or ":" not in name:
        raise ImpastoError(f"not a job runner: {name!r}")
    module, func = name.split(":", 1)
    fn: Runner = getattr(importlib.import_module(module), func)
    return fn


@contextlib.contextmanager
def _stderr_to(path: Any) -> Iterator[None]:
    """The job's stderr (a traceback, a library warning) goes to its own log while it runs."""
    if not isinstance(path, str):
        yield
        return
    saved = os.dup(2)
    try:
        with open(path, "ab") as log:
            os.dup2(log.fileno(), 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def one_line_error(e: BaseException) -> str:
    """A failure as the one line a job reports."""
    if isinstance(e, ImpastoError):
        return str(e)
    if isinstance(e, MemoryError):
        return "out of memory: try a smaller size"
    msg = " ".join(str(e).split()) or type(e).__name__
    if "out of memory" in msg.lower():
        return "out of memory: try a smaller size"
    return f"internal error: {msg}"[:500]


def run_one(ch: _Channel, msg: dict[str, Any], control: JobControl, weights: Any) -> None:
    """Run one job message to its terminal event (emitting ``failed`` for a runner that raised)."""
    with _stderr_to(msg.get("log")):
        try:
            _runner(msg.get("run"))(msg.get("job") or {}, WorkerContext(ch, control, weights))
        except Exception as e:  # noqa: BLE001 - every failure of one job is one line; the worker lives on
            if not isinstance(e, ImpastoError):
                traceback.print_exc(file=sys.stderr)
            if not ch.ended:
                ch.emit("failed", error=one_line_error(e))
        if not ch.ended:
            ch.emit("failed", error="internal error: the job ended without a result")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m impasto.jobs.worker", description=__doc__)
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    p.add_argument("--weights", default=None, help="VGG weights to load at start ('' = the bundled VGG19; "
                   "absent: none, each job loads its own)")
    p.add_argument("--max-jobs", type=int, default=0, help="exit after this many jobs (0: never)")
    p.add_argument("--memory-share", type=int, default=1,
                   help="workers started together on this machine: each auto memory budget is this share of it")
    opts = p.parse_args(list(sys.argv[1:] if argv is None else argv))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the pool owner's to handle
    out = sys.stdout
    # Anything else that writes to stdout (a library warning) must not corrupt the event stream.
    sys.stdout = sys.stderr
    ch = _Channel(out, sys.stdin)
    ch.start_reader()
    weights = None
    try:
        if opts.threads > 0:
            for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
                os.environ[var] = str(opts.threads)
        import torch

        if opts.threads > 0:
            torch.set_num_threads(opts.threads)
        if opts.memory_share != 1:
            from impasto.tiling.memory import set_memory_share

            set_memory_share(opts.memory_share)
        if opts.weights is not None:
            from impasto.vgg import load_weights

            weights = load_weights(opts.weights or None)
    except Exception as e:  # noqa: BLE001
        ch.emit("failed", error=f"the job process could not start: {' '.join(str(e).split())}")
        return 1
    ch.emit("ready", pid=os.getpid())
    done = 0
    while not opts.max_jobs or done < opts.max_jobs:
        msg, control = ch.next_job()
        run_one(ch, msg, control, weights)
        done += 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
