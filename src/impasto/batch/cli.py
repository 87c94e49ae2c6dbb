"""``impasto batch``: many contents × many styles (or a manifest) into one folder, resumably.

    impasto batch --contents photos/ --styles paintings/ -o out/ --size 512
    impasto batch --manifest jobs.csv -o out/ --backend ray --address auto

Every single-run flag (``--size``, ``--steps``, ``--preset``, ``--config``, ``--weights``, ...) applies to
all jobs; it is parsed by the main CLI's own parser and turned into a Config by its ``config_from_args``,
so the two front-ends cannot drift apart. A manifest row can override ``preset`` and any Config field.
Outputs are named ``CONTENT__STYLE.png`` (see :func:`impasto.batch.jobs.default_name`).

Exit status: 0 when every job is done or was already done, 1 when any job failed (they are listed),
2 for a bad command line or input, 130 on Ctrl-C (finished outputs and checkpoints are kept).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from impasto.batch.jobs import (
    OUTPUT_FORMATS,
    JobRequest,
    JobResult,
    JobSpec,
    grid_requests,
    read_manifest,
    resolve_jobs,
)
from impasto.config import Config
from impasto.errors import ImpastoError
from impasto.jobs import fmt_time
from impasto.jobs.argtypes import Parser, int_at_least, nonneg_float
from impasto.jobs.flags import add_config_flags, checkpoint_every

EXIT_FAILED = 1
EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="impasto batch", allow_abbrev=False,
        description="Stylise many photos with many paintings (every content × every style, or the rows of a "
        "manifest) into one folder. Re-running the command finishes only what is missing.",
        epilog="The configuration flags are those of a single run and apply to every job. Outputs are named "
        "CONTENT__STYLE.EXT (manifest rows with overrides add __field-value; an 'output' column names "
        "a row's file). OUTDIR/.impasto-batch/ holds locks, checkpoints and a journal of written files.",
    )
    src = p.add_argument_group("jobs")
    src.add_argument("--contents", nargs="+", metavar="PATH", help="content photos or folders of them")
    src.add_argument("--styles", nargs="+", metavar="PATH", help="style paintings or folders of them")
    src.add_argument("--manifest", metavar="FILE",
                     help=".csv (header: content,style[,output,preset,style_weight,size,seed,...]) or .jsonl, "
                     "one job per row; several styles of one job joined by ';'")
    src.add_argument("-o", "--outdir", required=True, metavar="OUTDIR",
                     help="folder for the outputs (created if its parent exists)")
    src.add_argument("--format", choices=OUTPUT_FORMATS, default="png", help="output format (default: png)")
    src.add_argument("--overwrite", action="store_true",
                     help="replace files at output names that impasto batch did not write (default: fail those jobs)")
    src.add_argument("--dry-run", action="store_true", help="list the jobs and their outputs, run nothing")
    src.add_argument("--show-cost", action="store_true",
                     help="print what each job would cost (each scale's modelled peak memory, whole and under "
                     "--max-memory, its tiles, and the time from a measured step rate; the table of impasto "
                     "--show-cost) and exit without running or writing anything")

    run = p.add_argument_group("execution")
    run.add_argument("--backend", choices=("local", "ray"), default="local",
                     help="local: a process pool on this machine (default); ray: Ray actors (pip install "
                     "'impasto[ray]')")
    run.add_argument("--workers", type=int_at_least(1), metavar="N",
                     help="jobs at once (default: local, one per core; ray, one per cluster CPU or GPU)")
    run.add_argument("--threads", type=int_at_least(1), metavar="N",
                     help="torch threads per worker (default: cores / workers, so workers × threads <= cores)")
    run.add_argument("--address", metavar="ADDR",
                     help="ray: 'auto' joins the cluster of 'ray start', ray://HOST:PORT a remote one "
                     "(default: a private local Ray)")
    run.add_argument("--gpus-per-worker", type=nonneg_float, metavar="F",
                     help="ray: GPUs per actor (default: 1 when the cluster has GPUs, else 0)")
    run.add_argument("--max-retries", type=int_at_least(0), default=2, metavar="N",
                     help="re-runs of a job whose worker died (it resumes from its checkpoint; default: 2)")
    run.add_argument("--checkpoint-every", type=checkpoint_every, default=None, metavar="N|auto",
                     help="checkpoint a running job every N steps (auto: once a minute, as a single run does; "
                     "0: never, a killed job then starts again) (default: auto)")
    run.add_argument("-q", "--quiet", action="store_true", help="only the summary and failures")

    cfg = p.add_argument_group("configuration of every job (a manifest row's columns override these)")
    cfg.add_argument("--config", metavar="FILE", help="start from a JSON configuration (as show-config prints)")
    # dest preset_name: 'preset' is also a Config field (provenance), which changes_from_args would copy.
    cfg.add_argument("--preset", dest="preset_name", metavar="NAME",
                     help="start from a named configuration ('impasto presets' lists them); flags override it")
    cfg.add_argument("--allow-vgg19", action="store_true",
                     help="run a VGG16 preset (keras-white) on the bundled VGG19 when no --weights are given")
    add_config_flags(p)  # the single-run CLI's flags, generated from Config: the two cannot drift apart
    return p


# -- the shared single-run flags -----------------------------------------------------------------------


class SharedConfig:
    """The batch-wide configuration from the single-run flags, per preset (a manifest row may name one).

    Precedence, lowest first: the defaults, ``--config FILE`` or a preset (the row's, else ``--preset``),
    then the command-line flags, then a manifest row's own columns (applied in
    :func:`impasto.batch.jobs.resolve_jobs`).
    """

    def __init__(self, args: argparse.Namespace) -> None:
        from impasto.jobs.flags import changes_from_args

        self.args = args
        self.changes = changes_from_args(args)
        if args.config and args.preset_name is not None:
            raise ImpastoError("give --config or --preset, not both")
        self._cache: dict[str | None, Config] = {}

    @classmethod
    def from_argv(cls, argv: Sequence[str]) -> SharedConfig:
        """From single-run flags alone (for programs and tests that plan batches without the CLI)."""
        args = build_parser().parse_args(["-o", ".", *argv])
        return cls(args)

    def __call__(self, preset: str | None) -> Config:
        preset = preset if preset is not None else self.args.preset_name
        hit = self._cache.get(preset)
        if hit is None:
            from impasto.jobs import for_preset_run, resolve

            hit = resolve(self.changes, preset=preset, config_file=None if preset is not None else self.args.config)
            hit = for_preset_run(hit, preset, allow_vgg19=self.args.allow_vgg19)
            self._cache[preset] = hit
        return hit

    def finalize(self, cfg: Config, styles: list[str]) -> tuple[Config, list[str]]:
        from impasto.jobs import resolve_region_styles

        return resolve_region_styles(cfg, styles)


# -- progress display ------------------------------------------------------------------------------------


class Display:
    """A status line redrawn in place on a terminal; one line per finished job otherwise."""

    def __init__(self, stream: TextIO, quiet: bool) -> None:
        self.stream = stream
        self.quiet = quiet
        self.tty = stream.isatty() and not quiet
        self._line = False

    def _status(self, ev: Any) -> str:
        c = ev.counts
        return (f"[{c.finished}/{c.total}] done {c.done}, skipped {c.skipped}, running {c.running}, "
                f"failed {c.failed}" + (f", waiting {c.waiting}" if c.waiting else "") +
                f" | {fmt_time(ev.elapsed)} elapsed, ETA {fmt_time(ev.eta)}")

    def _clear(self) -> None:
        if self._line:
            self.stream.write("\r\x1b[K")
            self._line = False

    def update(self, ev: Any) -> None:
        if self.quiet:
            return
        line = None
        if ev.kind in ("done", "failed", "skipped", "waiting"):
            r = ev.result
            what = {"done": "done   ", "failed": "FAILED ", "skipped": "skipped", "waiting": "waiting"}[ev.kind]
            detail = ""
            if r is not None and r.status == "done":
                detail = f" {r.seconds:.1f}s"
            if r is not None and (r.error or r.note):
                detail += f" ({r.error or r.note})"
            if ev.kind == "waiting":
                detail = f" ({ev.message})"
            line = f"{what} {ev.job.name}{detail}"
        if self.tty:
            self._clear()
            if line is not None:
                self.stream.write(line + "\n")
            self.stream.write(self._status(ev))
            self._line = True
        elif line is not None:
            self.stream.write(f"{line}  {self._status(ev)}\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self._clear()
            self.stream.flush()


def summary_table(results: Sequence[JobResult]) -> str:
    """One row per job: output, status, wall seconds (dispatch to written file, including a worker's start-up),
    compute seconds (the optimisation of the finishing attempt), steps, attempts, note (the error of a failure)."""
    rows = [("output", "status", "wall s", "compute s", "steps", "attempts", "note")]
    for r in results:
        out = r.output
        rows.append((r.job.name, r.status, f"{r.seconds:.1f}" if r.status != "skipped" else "-",
                     f"{out.seconds:.1f}" if out else "-", str(out.steps) if out else "-",
                     str(out.attempt) if out else "-", r.error or r.note))
    n = len(rows[0]) - 1
    widths = [max(len(row[i]) for row in rows) for i in range(n)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row[:n], widths)) + ("  " + row[n] if row[n] else "")
             for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


def show_costs(jobs: Sequence[JobSpec], out: TextIO, err: TextIO, *, share: int = 1) -> int:
    """``--show-cost``: each job's cost table (:meth:`impasto.tiling.cost.RunCost.lines`, as ``impasto
    --show-cost`` prints it) under its output name, then the batch's total time. A job that cannot run
    under its ``max_memory`` (or in tiles) gets its one-line reason instead and the status is 1.
    ``share``: the local workers that will split the machine's memory (an ``auto`` budget is 1/share)."""
    from impasto.batch.jobs import job_cost
    from impasto.tiling.cost import format_duration

    total, refused = 0.0, []
    for j in jobs:
        out.write(f"{j.name}: {Path(j.content).name} × {', '.join(Path(s).name for s in j.styles)}\n")
        try:
            cost = job_cost(j, share=share)
        except ImpastoError as e:
            out.write(f"  cannot run: {e}\n\n")
            refused.append(j.name)
            continue
        total += cost.seconds
        out.write("\n".join(cost.lines()) + "\n\n")
    out.write(f"{len(jobs)} jobs, about {format_duration(total)} of compute in all (one job at a time; "
              "concurrent workers share the machine's memory and cores)\n")
    if refused:
        err.write(f"impasto batch: {len(refused)} job(s) cannot run as configured: {', '.join(refused)}\n")
        return EXIT_FAILED
    return 0


# -- main -----------------------------------------------------------------------------------------------


def plan(args: argparse.Namespace, shared: SharedConfig) -> list[JobSpec]:
    """The batch's jobs from --contents/--styles or --manifest (ImpastoError for bad input)."""
    if args.manifest and (args.contents or args.styles):
        raise ImpastoError("give --manifest or --contents/--styles, not both")
    requests: list[JobRequest]
    if args.manifest:
        requests = read_manifest(args.manifest)
    elif args.contents and args.styles:
        requests = grid_requests(args.contents, args.styles)
    else:
        raise ImpastoError("give --contents and --styles (every content × every style), or --manifest FILE")
    outdir = Path(args.outdir).expanduser()
    if outdir.exists() and not outdir.is_dir():
        raise ImpastoError(f"-o {outdir} is a file; give a folder")
    if not outdir.exists() and not outdir.parent.is_dir():
        raise ImpastoError(f"the folder holding -o {outdir} does not exist; create it first")
    return resolve_jobs(requests, str(outdir), shared, ext=args.format, checkpoint_every=args.checkpoint_every,
                        finalize=shared.finalize)


def _interrupt_on_termination() -> Callable[[], None]:
    """SIGTERM and SIGHUP (a closed terminal, a job scheduler's stop) end the batch like Ctrl-C: workers
    stopped, locks released, Ray shut down, exit 130. Returns the function that restores the handlers.
    Only the main thread may set handlers; elsewhere (a batch run from a thread) nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    old = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}

    def restore() -> None:
        for sig, handler in old.items():
            signal.signal(sig, handler)

    return restore


def main(argv: Sequence[str], *, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """``impasto batch ARGS``; returns the exit status. Raises ImpastoError for bad input (the top-level
    ``impasto`` prints it as one line and exits 2)."""
    from impasto.batch.backends import make_backend
    from impasto.batch.runner import run_batch

    out = stdout or sys.stdout
    err = stderr or sys.stderr
    args = build_parser().parse_args(list(argv))
    shared = SharedConfig(args)
    jobs = plan(args, shared)
    if args.dry_run:
        for j in jobs:
            out.write(f"{j.name}\t{j.content}\t{';'.join(j.styles)}\t{j.key[:12]}\n")
        return 0
    if args.show_cost:
        from impasto.batch.protocol import cpu_count, split_threads

        share = split_threads(args.workers, args.threads, cpu_count(), len(jobs))[0] if args.backend == "local" else 1
        return show_costs(jobs, out, err, share=share)
    backend = make_backend(args.backend, workers=args.workers, threads=args.threads, jobs=len(jobs),
                           max_retries=args.max_retries, address=args.address, gpus_per_worker=args.gpus_per_worker)
    outdir = Path(args.outdir).expanduser()
    if not outdir.exists():  # only now: a command line with a mistake leaves nothing behind
        try:
            outdir.mkdir()
        except OSError as e:
            raise ImpastoError(f"cannot create {outdir}: {e.strerror or e}") from None
    display = Display(err, args.quiet)
    results: dict[str, JobResult] = {}
    t0 = time.monotonic()
    announced = False
    events = run_batch(jobs, backend, overwrite=args.overwrite)
    restore = _interrupt_on_termination()
    try:
        for ev in events:
            if not announced and ev.kind == "started":
                announced = True
                _interrupt_on_termination()  # again: ray.init replaces the driver's SIGTERM handler
                if not args.quiet:
                    display.close()
                    err.write(f"{len(jobs)} jobs, {backend.description}\n")
            if ev.result is not None:
                results[ev.result.job.name] = ev.result
            display.update(ev)
    except KeyboardInterrupt:
        events.close()
        display.close()
        err.write("impasto batch: interrupted; finished outputs are kept and running jobs resume from their "
                  "checkpoints when the same command is run again\n")
        return 130
    finally:
        restore()
        display.close()
    ordered = [results[j.name] for j in jobs if j.name in results]
    out.write(summary_table(ordered) + "\n")
    done = sum(r.status == "done" for r in ordered)
    skipped = sum(r.status == "skipped" for r in ordered)
    failed = [r for r in ordered if r.status == "failed"]
    out.write(f"{done} done, {skipped} already done, {len(failed)} failed in {fmt_time(time.monotonic() - t0)}"
              f" -> {args.outdir}\n")
    if failed:
        err.write(f"impasto batch: {len(failed)} job(s) failed:\n")
        for r in failed:
            err.write(f"  {r.job.name}: {r.error}\n")
        return EXIT_FAILED
    return 0


__all__ = ["Display", "SharedConfig", "build_parser", "main", "plan", "show_costs", "summary_table"]
