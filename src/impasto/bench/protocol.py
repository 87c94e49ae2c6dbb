"""A step-time comparison that holds on a noisy machine: interleaved, repeated, with its uncertainty.

``python -m impasto.bench.protocol`` compares impasto with pastiche 1.6.0 on the same problem (the
pastiche objective, :func:`impasto.bench.perf.pastiche_config`) two ways, and writes one JSON file:

* **Step time, interleaved.** One long-lived worker process per tool; the driver asks them for one
  L-BFGS step at a time, alternating A B, B A, A B ... (the first of each pair alternates, so neither tool
  always follows the other), so a burst of load from another process hits both tools alike. Each worker
  times its own step. ``--warmup`` untimed steps, then ``--steps`` (at least 20) timed ones per tool; the
  whole measurement (fresh workers) is repeated ``--repeats`` times. Reported per tool and repeat:
  minimum, median, quartiles, relative spread (IQR / median) and maximum; the ratio impasto/pastiche of
  medians and of minima per repeat, and over the repeats their mean ± sample standard deviation and range.
* **End to end, fresh processes.** Each tool runs ``--e2e-steps`` steps in a new Python process, tools
  alternating, ``--repeats`` times. The driver's clock runs from just before the process is spawned until
  it exits (interpreter start, imports, weight loading, targets, steps: what a user waits for); the worker
  also reports its optimisation-only time (the sum of its step times) and its set-up time.

The like-for-like row runs impasto as plain L-BFGS, the same algorithm as pastiche's torch.optim.LBFGS:
trust region off (``lbfgs_max_step`` none) and divergence guard off (``restart_factor`` none).
``--impasto-defaults`` adds impasto with both on, labelled as such.

The FLOP bound of a step counts the 3×3 convolutions (forward, and backward to the input) plus the Gram
matrices (forward and backward), over this machine's best fp32 ``torch.mm`` rate; the JSON also records
the load average before and after each phase (``os.getloadavg()``): figures taken with a load above the
number of cores are not to be quoted.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO, TextIO

import torch

from impasto.bench.perf import matmul_gflops, pastiche_config, prepare_inputs, step_flops

TAG = "@@PROTO "
VARIANTS = {
    "pastiche": "pastiche 1.6.0 (torch.optim.LBFGS, max_iter 1, history 100)",
    "impasto": "impasto, like-for-like: plain L-BFGS (max_iter 1, history 100), trust region off, divergence guard off",
    "impasto-defaults": "impasto with its trust region (lbfgs_max_step 0.04) and divergence guard (1000x) on",
}


def _loadavg() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


class _Stepper:
    """One tool, set up on the pastiche problem, advanced one L-BFGS step at a time."""

    def __init__(self, tool: str, size: int, device: str, inputs: Path) -> None:
        content_png, style_png = prepare_inputs(size, inputs)
        self.loss = math.nan
        if tool == "pastiche":
            from pastiche.pastiche import PasticheArtist

            self._artist = PasticheArtist(str(content_png), [str(style_png)], device=device, style_size=size)
            self._gen = None
        else:
            from impasto.engine import StyleTransfer
            from impasto.io.images import load_image

            changes: dict[str, Any] = {"steps": 1_000_000}
            if tool == "impasto":
                changes.update(lbfgs_max_step=None, restart_factor=None)
            cfg = pastiche_config(size, device, **changes)
            self._st = StyleTransfer(load_image(content_png), [load_image(style_png)], cfg)
            self._gen = self._st.run()

    def step(self) -> float:
        """Seconds of one step (each tool reads its loss back, so the step has finished on the device)."""
        t0 = time.perf_counter()
        if self._gen is None:
            self._artist.draw()
            self.loss = float(self._artist.loss)
        else:
            ev = next(self._gen)
            self.loss = ev.loss
        return time.perf_counter() - t0


def serve(tool: str, size: int, device: str, inputs: Path, stdin: TextIO, stdout: TextIO) -> int:
    """Worker: set up, say READY, then one step per 'step' line until 'quit'."""
    t0 = time.perf_counter()
    stepper = _Stepper(tool, size, device, inputs)
    stdout.write(TAG + json.dumps({"ready": time.perf_counter() - t0}) + "\n")
    stdout.flush()
    for line in stdin:
        if line.strip() != "step":
            break
        dt = stepper.step()
        stdout.write(TAG + json.dumps({"s": dt, "loss": stepper.loss}) + "\n")
        stdout.flush()
    return 0


def end_to_end(tool: str, size: int, device: str, inputs: Path, steps: int, started: float) -> dict[str, Any]:
    """Worker: set up and run ``steps`` steps; ``started`` is the driver's spawn time (time.time())."""
    t0 = time.perf_counter()
    at_start = time.time() - started
    stepper = _Stepper(tool, size, device, inputs)
    setup = time.perf_counter() - t0
    times = [stepper.step() for _ in range(steps)]
    return {"spawn_to_main_s": at_start, "setup_s": setup, "optimise_s": sum(times), "step_times": times,
            "loss": stepper.loss}


def _stats(xs: Sequence[float]) -> dict[str, float]:
    q = statistics.quantiles(xs, n=4, method="inclusive") if len(xs) >= 2 else [xs[0]] * 3
    med = statistics.median(xs)
    return {"n": len(xs), "min": min(xs), "p25": q[0], "median": med, "p75": q[2], "max": max(xs),
            "iqr_over_median": (q[2] - q[0]) / med if med else math.nan}


def _mean_sd(xs: Sequence[float]) -> dict[str, float]:
    return {"mean": statistics.fmean(xs), "sd": statistics.stdev(xs) if len(xs) > 1 else math.nan,
            "min": min(xs), "max": max(xs), "n": len(xs)}


class _Worker:
    def __init__(self, tool: str, args: argparse.Namespace, env: dict[str, str]) -> None:
        cmd = [sys.executable, "-m", "impasto.bench.protocol", "--serve", tool, "--size", str(args.size),
               "--device", args.device, "--inputs", str(args.inputs)]
        self.tool = tool
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        self.ready = float(self._read()["ready"])

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith(TAG):
                out: dict[str, Any] = json.loads(line[len(TAG):])
                return out
        raise RuntimeError(f"benchmark worker {self.tool} ended early (exit {self.proc.wait()})")

    def step(self) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write("step\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.close()
        self.proc.wait(timeout=60)


def interleaved(tools: list[str], args: argparse.Namespace, env: dict[str, str]) -> dict[str, Any]:
    """One repeat of the interleaved step-time measurement (fresh workers)."""
    workers = [_Worker(t, args, env) for t in tools]
    times: dict[str, list[float]] = {t: [] for t in tools}
    losses: dict[str, list[float]] = {t: [] for t in tools}
    order: list[str] = []
    try:
        for i in range(args.warmup + args.steps):
            seq = workers if i % 2 == 0 else workers[::-1]
            for w in seq:
                r = w.step()
                order.append(w.tool)
                if i >= args.warmup:
                    times[w.tool].append(float(r["s"]))
                losses[w.tool].append(float(r["loss"]))
    finally:
        for w in workers:
            w.close()
    return {"stats": {t: _stats(v) for t, v in times.items()}, "times": times, "losses": losses,
            "order": "".join("A" if t == tools[0] else "B" if t == tools[1] else "C" for t in order),
            "setup_s": {w.tool: w.ready for w in workers}}


def run_end_to_end(tool: str, args: argparse.Namespace, env: dict[str, str]) -> dict[str, Any]:
    started = time.time()
    t0 = time.perf_counter()
    cmd = [sys.executable, "-m", "impasto.bench.protocol", "--e2e", tool, "--size", str(args.size), "--device",
           args.device, "--inputs", str(args.inputs), "--e2e-steps", str(args.e2e_steps),
           "--started", repr(started)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    wall = time.perf_counter() - t0
    for line in proc.stdout.splitlines():
        if line.startswith(TAG):
            res: dict[str, Any] = json.loads(line[len(TAG):])
            res["end_to_end_s"] = wall
            return res
    raise RuntimeError(f"end-to-end worker {tool} failed: {(proc.stderr or '').strip().splitlines()[-1:]}")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m impasto.bench.protocol", description=__doc__.split("\n")[0])
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--steps", type=int, default=20, help="timed steps per tool and repeat (at least 20)")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--e2e-steps", type=int, default=10, help="steps of each end-to-end run (0: skip)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=0, help="torch threads in the workers (0: torch's default)")
    p.add_argument("--impasto-defaults", action="store_true", help="also time impasto with its guards on")
    p.add_argument("--images", type=Path, default=None,
                   help="folder with tubingen.jpg and starry_night.jpg (default: $IMPASTO_IMAGES, else the "
                        "bundled demo pair)")
    p.add_argument("--inputs", type=Path, default=Path("out/bench/inputs"))
    p.add_argument("--out", type=Path, default=Path("out/bench/protocol.json"))
    p.add_argument("--allow-few-steps", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--serve", help=argparse.SUPPRESS)
    p.add_argument("--e2e", help=argparse.SUPPRESS)
    p.add_argument("--started", type=float, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.serve:
        return serve(args.serve, args.size, args.device, args.inputs, sys.stdin, sys.stdout)
    if args.e2e:
        res = end_to_end(args.e2e, args.size, args.device, args.inputs, args.e2e_steps, args.started)
        print(TAG + json.dumps(res), flush=True)
        return 0
    if args.steps < 20 and not args.allow_few_steps:
        p.error("--steps must be at least 20: fewer cannot separate two tools within 10 % of each other")
    if args.images is not None:
        os.environ["IMPASTO_IMAGES"] = str(args.images.resolve())
    args.inputs = args.inputs.resolve()
    env = dict(os.environ)
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2]) + os.pathsep + env.get("PYTHONPATH", "")
    if args.threads:
        env["OMP_NUM_THREADS"] = str(args.threads)
        torch.set_num_threads(args.threads)
    tools = ["pastiche", "impasto"] + (["impasto-defaults"] if args.impasto_defaults else [])
    record: dict[str, Any] = {
        "command": "python -m impasto.bench.protocol " + " ".join(sys.argv[1:] if argv is None else argv),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "machine": platform.processor() or
        platform.machine(), "cpus": os.cpu_count(), "torch": torch.__version__, "device": args.device,
        "threads": args.threads or torch.get_num_threads(), "size": args.size,
        "variants": {t: VARIANTS[t] for t in tools},
        "protocol": {"steps": args.steps, "warmup": args.warmup, "repeats": args.repeats,
                     "e2e_steps": args.e2e_steps},
        "loadavg": {"start": _loadavg()},
    }
    fl = step_flops(args.size, args.size)
    gflops = matmul_gflops(2048 if args.device == "cpu" else 8192, 5, args.device)
    record["bound"] = {"conv_gflop": fl.conv / 1e9, "gram_gflop": fl.gram / 1e9, "total_gflop": fl.total / 1e9,
                       "matmul_gflops": gflops, "bound_s": fl.total / (gflops * 1e9)}
    print(f"{args.size} px, {args.device}, {record['threads']} threads; load average {record['loadavg']['start']}; "
          f"bound {record['bound']['bound_s']:.3f} s/step ({fl.total / 1e9:.1f} GFLOP at {gflops:.1f} GFLOP/s)",
          flush=True)

    repeats = []
    for r in range(args.repeats):
        rep = interleaved(tools, args, env)
        rep["loadavg_after"] = _loadavg()
        repeats.append(rep)
        line = "  ".join(f"{t} min {s['min']:.3f} med {s['median']:.3f} spread {100 * s['iqr_over_median']:.0f}%"
                         for t, s in rep["stats"].items())
        print(f"repeat {r + 1}: {line}  (load {rep['loadavg_after']})", flush=True)
    record["interleaved"] = repeats
    summary: dict[str, Any] = {}
    for t in tools[1:]:
        med = [rep["stats"][t]["median"] / rep["stats"]["pastiche"]["median"] for rep in repeats]
        mins = [rep["stats"][t]["min"] / rep["stats"]["pastiche"]["min"] for rep in repeats]
        summary[t] = {"ratio_of_medians": _mean_sd(med), "ratio_of_minima": _mean_sd(mins)}
    for t in tools:
        summary.setdefault(t, {})["step_s"] = {
            "min": min(rep["stats"][t]["min"] for rep in repeats),
            "median_of_medians": statistics.median(rep["stats"][t]["median"] for rep in repeats),
        }
        summary[t]["fraction_of_bound_at_min"] = record["bound"]["bound_s"] / summary[t]["step_s"]["min"]
    record["summary"] = summary
    record["loadavg"]["after_interleaved"] = _loadavg()

    if args.e2e_steps:
        runs: dict[str, list[dict[str, Any]]] = {t: [] for t in tools}
        for r in range(args.repeats):
            for t in tools if r % 2 == 0 else tools[::-1]:
                runs[t].append(run_end_to_end(t, args, env))
        record["end_to_end"] = {
            t: {"runs": v, "end_to_end_s": _stats([x["end_to_end_s"] for x in v]),
                "optimise_s": _stats([x["optimise_s"] for x in v]), "setup_s": _stats([x["setup_s"] for x in v])}
            for t, v in runs.items()}
        record["loadavg"]["after_end_to_end"] = _loadavg()

    print()
    for t in tools:
        s = summary[t]
        ratio = ""
        if t != "pastiche":
            rm, rn = s["ratio_of_medians"], s["ratio_of_minima"]
            ratio = (f"; /pastiche: medians {rm['mean']:.3f} ± {rm['sd']:.3f} (range {rm['min']:.3f}-{rm['max']:.3f}), "
                     f"minima {rn['mean']:.3f} ± {rn['sd']:.3f}")
        print(f"{t:17s} step: min {s['step_s']['min']:.3f} s, median {s['step_s']['median_of_medians']:.3f} s, "
              f"{100 * s['fraction_of_bound_at_min']:.0f}% of the bound at its fastest{ratio}")
    if args.e2e_steps:
        for t in tools:
            e = record["end_to_end"][t]
            print(f"{t:17s} {args.e2e_steps} steps in a fresh process: end to end {e['end_to_end_s']['median']:.2f} s "
                  f"(min {e['end_to_end_s']['min']:.2f}), optimisation only {e['optimise_s']['median']:.2f} s, "
                  f"set-up {e['setup_s']['median']:.2f} s")
    print(f"load average: {record['loadavg']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    from impasto.io.atomic import atomic_write

    data = (json.dumps(record, indent=1) + "\n").encode()

    def write(fh: BinaryIO) -> None:
        fh.write(data)

    atomic_write(args.out, write)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
