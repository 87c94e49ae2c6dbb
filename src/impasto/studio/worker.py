"""The job process: runs one style transfer for the server, in a process of its own.

Why a process per job: a crash, an out-of-memory kill or a runaway native library in one job must not
take the server down, and killing a process is the only cancel that always works. The server starts
the process *before* a job arrives (``python -m impasto.studio.worker``): it imports torch and loads the
VGG weights, says ``ready``, and waits on stdin, so a submitted job starts without that delay.

Protocol (one JSON object per line): the server writes the job to stdin, then may write ``cancel`` or
``suspend``; the worker writes events to stdout (``ready``, ``started``, ``progress``, ``preview``,
``checkpoint``, then exactly one of ``done``, ``failed``, ``cancelled``, ``suspended``). stdin reaching
its end means the server is gone (even ``kill -9``): the worker exits at once, and the next server
resumes the job from its last checkpoint. This module is a front-end process, so it writes to its own
stdout; nothing in the engine prints.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

EXIT_PARENT_GONE = 3


class _Channel:
    """Events out (stdout), commands in (stdin, read by a daemon thread)."""

    def __init__(self, out: IO[str], inp: IO[str]) -> None:
        self.out = out
        self.inp = inp
        self.cancel = threading.Event()
        self.suspend = threading.Event()
        self._job_line: str | None = None
        self._job_ready = threading.Event()
        self._lock = threading.Lock()

    def emit(self, kind: str, **fields: Any) -> None:
        line = json.dumps({"type": kind, **fields}, allow_nan=False, default=str)
        try:
            with self._lock:
                self.out.write(line + "\n")
                self.out.flush()
        except (BrokenPipeError, OSError, ValueError):
            os._exit(EXIT_PARENT_GONE)  # the server is gone: nobody to report to

    def start_reader(self) -> None:
        threading.Thread(target=self._read, name="impasto-worker-stdin", daemon=True).start()

    def _read(self) -> None:
        for raw in self.inp:
            line = raw.strip()
            if not line:
                continue
            if self._job_line is None:
                self._job_line = line
                self._job_ready.set()
            elif line == "cancel":
                self.cancel.set()
            elif line == "suspend":
                self.suspend.set()
        # End of stdin: the server closed the pipe or died. Stop now, without writing anything: a
        # new server may already be resuming this job from its checkpoint.
        os._exit(EXIT_PARENT_GONE)

    def wait_job(self) -> dict[str, Any]:
        self._job_ready.wait()
        assert self._job_line is not None
        job: dict[str, Any] = json.loads(self._job_line)
        return job


def _finite(x: float) -> float | None:
    return x if x == x and x not in (float("inf"), float("-inf")) else None


def run_job(ch: _Channel, job: dict[str, Any], weights: Any, opts: argparse.Namespace) -> int:
    """Run (or resume) one job; returns the exit status."""
    import torch

    from impasto import Config, ImpastoError, StyleTransfer, __version__
    from impasto.io import save_image
    from impasto.studio.storage import atomic_write_bytes

    job_dir = Path(job["dir"])
    checkpoint = job_dir / "checkpoint.pt"
    content = job["content"]
    styles = list(job["styles"])
    history: list[list[float]] = []
    resumed_from = 0
    # The uploads are named by their sha256: the checkpoint need not hash them again every time.
    hashes = dict(zip([content, *styles], [job["content_sha256"], *job["styles_sha256"]]))
    try:
        ckmod: Any
        try:
            import impasto.checkpoint as ckmod
        except ImportError:  # engine without resumable runs: every restart starts over
            ckmod = None
        st: StyleTransfer | None = None
        if ckmod is not None and checkpoint.is_file():
            try:
                st, ck = ckmod.resume(checkpoint, weights=weights)
                history = [list(map(float, row)) for row in ck.extra.get("history", [])]
                resumed_from = ck.step
            except ImpastoError as e:
                ch.emit("log", message=f"checkpoint not usable ({e}); starting again")
                st = None
        if st is None:
            cfg = Config.from_dict(job["config"])
            st = StyleTransfer(content, styles, cfg, weights=weights)
        sizes = [list(s) for s in st.sizes]
        steps = list(st.steps)
        total = sum(steps)
        # Work per step grows with the pixels of its scale: the ETA weighs steps by that.
        work = [h * w for (h, w) in st.sizes]
        work_before = [sum(work[i] * steps[i] for i in range(k)) for k in range(len(steps))]
        total_work = sum(w * n for w, n in zip(work, steps))
        ch.emit("started", total_steps=total, sizes=sizes, steps=steps, resumed_from=resumed_from,
                history=history)
        t0 = time.perf_counter()
        last_preview = -1e9
        last_scale = -1
        first: tuple[float, int] | None = None
        result = None
        step = resumed_from

        def write_preview(img: torch.Tensor, s: int) -> None:
            from impasto.io import to_pil

            buf = _png_bytes(to_pil(img))
            atomic_write_bytes(job_dir / "preview.png", buf)
            ch.emit("preview", step=s, size=[int(img.shape[1]), int(img.shape[2])])

        for ev in st.run(image_every=0):
            if ev.done:
                result = ev
                break
            step = ev.step
            history.append([ev.step, float(f"{ev.loss:.6g}")])
            done_work = work_before[ev.scale] + work[ev.scale] * (ev.step - sum(steps[: ev.scale]))
            now = time.perf_counter()
            if first is None:  # the ETA counts from the first step this process made
                first = (now, done_work)
            rate = (now - first[0]) / max(1, done_work - first[1]) if done_work > first[1] else 0.0
            eta = (total_work - done_work) * rate
            ch.emit("progress", step=ev.step, total_steps=ev.total_steps, scale=ev.scale, n_scales=ev.n_scales,
                    size=list(ev.size), loss=_finite(ev.loss), content=_finite(ev.content),
                    style=_finite(ev.style), tv=_finite(ev.tv), elapsed=round(now - t0, 3), eta=round(eta, 1))
            if ev.scale != last_scale or now - last_preview >= opts.preview_seconds:
                write_preview(st.current_image(), ev.step)
                last_preview, last_scale = time.perf_counter(), ev.scale
            if ch.cancel.is_set():
                ch.emit("cancelled", step=ev.step)
                return 0
            if ckmod is not None and (
                ch.suspend.is_set() or (opts.checkpoint_every > 0 and ev.step % opts.checkpoint_every == 0)
            ):
                ckmod.save_checkpoint(checkpoint, st, content=content, styles=styles, hashes=hashes,
                                      extra={"job": job["id"], "history": history})
                ch.emit("checkpoint", step=ev.step)
            if ch.suspend.is_set():
                ch.emit("suspended", step=ev.step)
                return 0
        assert result is not None and result.image is not None
        meta = {
            "impasto_version": __version__,
            "content": job["content_name"],
            "styles": job["style_names"],
            "content_sha256": job["content_sha256"],
            "styles_sha256": job["styles_sha256"],
            "config": st.config.to_dict(),
            "steps": result.step,
            "seconds": round(result.elapsed, 2),
            "restarts": result.restarts,
            "weights": getattr(weights, "source", None),
            "studio_job": job["id"],
            "resumed_from": job.get("resumes", []),
            "loss_history": {"columns": ["step", "loss"], "rows": history},
        }
        save_image(result.image, job_dir / "result.png", metadata=meta)
        # The result is safe on disk; only now is the preview brought up to date and the checkpoint
        # (the largest file, holding the optimiser's history) removed.
        write_preview(result.image, result.step)
        if checkpoint.exists():
            checkpoint.unlink()
        ch.emit("done", step=result.step, total_steps=total, loss=_finite(result.loss),
                seconds=round(time.perf_counter() - t0, 3), stop_reason=result.stop_reason)
        return 0
    except ImpastoError as e:
        ch.emit("failed", error=str(e), step=step if "step" in locals() else 0)
        return 0
    except MemoryError:
        ch.emit("failed", error="out of memory: try a smaller size")
        return 0
    except Exception as e:  # noqa: BLE001 - report every failure as one line; the log has the traceback
        traceback.print_exc(file=sys.stderr)
        msg = " ".join(str(e).split()) or type(e).__name__
        if "out of memory" in msg.lower():
            msg = "out of memory: try a smaller size"
        ch.emit("failed", error=f"internal error: {msg}"[:500])
        return 0


def _png_bytes(img: Any) -> bytes:
    import io

    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=3)
    return buf.getvalue()


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m impasto.studio.worker", description=__doc__)
    p.add_argument("--weights", default="", help="VGG weights file ('' = the bundled VGG19)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    p.add_argument("--preview-seconds", type=float, default=2.0)
    p.add_argument("--checkpoint-every", type=int, default=20)
    opts = p.parse_args(list(sys.argv[1:] if argv is None else argv))
    out = sys.stdout
    # Anything else that writes to stdout (a library warning) must not corrupt the event stream.
    sys.stdout = sys.stderr
    ch = _Channel(out, sys.stdin)
    ch.start_reader()
    try:
        import torch

        if opts.threads > 0:
            torch.set_num_threads(opts.threads)
        from impasto.vgg import load_weights

        weights = load_weights(opts.weights or None)
    except Exception as e:  # noqa: BLE001
        ch.emit("failed", error=f"the job process could not start: {' '.join(str(e).split())}")
        return 1
    ch.emit("ready", pid=os.getpid())
    job = ch.wait_job()
    # From here on this process belongs to one job: its stderr (a traceback, a library warning) goes to
    # the job's own log, which the server quotes when the process dies unexpectedly.
    with open(Path(job["dir"]) / "worker.log", "ab") as log:
        os.dup2(log.fileno(), 2)
    return run_job(ch, job, weights, opts)


if __name__ == "__main__":
    sys.exit(main())
