"""Where the tiles of a pass run: in this process, in worker processes (one per device), or on Ray actors.

A :class:`TileExecutor` runs the two pure per-tile functions of :mod:`impasto.tiling.objective` over the
tiles of one evaluation and hands back what the objective sums centrally:

- ``statistics(pixels, tiles, spec)`` -> the summed statistics (pass 1);
- ``backward(pixels, tiles, spec, style, contents)`` -> each tile's gradient of its ``read`` crop (in the
  order of ``tiles``; the objective adds them into the picture's gradient in that order) and the sums of
  the content and TV terms (pass 2).

Implementations:

- :class:`LocalExecutor`: this process and the model it has (what the objective does without an executor).
- :class:`ProcessExecutor`: one worker process per entry of ``devices`` (``cpu``, ``cuda``, ``cuda:N``),
  each started with ``spawn`` and holding its own copy of the network. Tiles are cut into contiguous
  chunks, one per worker, so which worker runs which tile depends only on the tile count, never on
  timing: a run is repeatable (and resumable bit-identically) for a fixed set of devices.
- :class:`RayExecutor`: the same with Ray actors (``ray.init`` first, or a local Ray is started with the
  ``impasto`` under this process shipped as a ``py_modules`` runtime_env, as batch's Ray backend does).

Messages are pickled over ``multiprocessing.Pipe`` pairs the parent creates before it spawns each worker:
an anonymous socket pair that only the two processes hold, never a file or a port, so nothing another
user or a planted file controls is ever unpickled.

Workers receive only the crops of their tiles (copied, on the CPU), the pickled :class:`TileSpec`, and in
pass 2 the fixed style gradients and content targets of their tiles; the central process keeps the
pixels, the optimiser and the sums. Per evaluation each worker receives about (1 + halo overhead) / N of
the picture twice and sends its gradient crops back once.

Results differ from the in-process ones only by float rounding: each worker sums the statistics of its
own chunk (float64) before the central sum, and its convolutions run with its own thread count.
"""

from __future__ import annotations

import io
import os
import pickle
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import Tensor

from impasto.errors import ImpastoError
from impasto.tiling.allocator import bound_allocator
from impasto.tiling.grid import Box, Tile
from impasto.tiling.objective import Stats, StyleGradient, TileSpec, sum_statistics, tile_backward, tile_statistics
from impasto.vgg import VGGFeatures


@dataclass
class BackwardSums:
    """Pass 2 over some tiles: each tile's ``read``-crop gradient (in the tiles' order) and the summed terms."""

    grads: list[Tensor]
    content: dict[str, Tensor]
    tv: Tensor


class TileExecutor(Protocol):
    """Runs the tiles of one pass somewhere; see the module's docstring."""

    workers: int

    def statistics(self, pixels: Tensor, tiles: Sequence[Tile], spec: TileSpec, checkpointing: bool) -> Stats: ...

    def backward(self, pixels: Tensor, tiles: Sequence[Tile], spec: TileSpec, style: dict[str, StyleGradient],
                 contents: Sequence[dict[str, Tensor]], checkpointing: bool) -> BackwardSums: ...

    def close(self) -> None: ...


def _crop(x: Tensor, box: Box) -> Tensor:
    return x[:, :, box[0] : box[1], box[2] : box[3]]


def chunk_statistics(model: VGGFeatures, crops: Sequence[Tensor], tiles: Sequence[Tile], spec: TileSpec) -> Stats:
    """Pass 1 over a chunk of tiles, ``crops`` their ``read`` crops: the chunk's summed statistics."""
    return sum_statistics([tile_statistics(model, c, t, spec) for c, t in zip(crops, tiles)])


def chunk_backward(model: VGGFeatures, crops: Sequence[Tensor], tiles: Sequence[Tile], spec: TileSpec,
                   style: dict[str, StyleGradient], contents: Sequence[dict[str, Tensor]]) -> BackwardSums:
    """Pass 2 over a chunk of tiles."""
    grads: list[Tensor] = []
    content: dict[str, Tensor] = {}
    tv: Tensor | None = None
    for c, t, ct in zip(crops, tiles, contents):
        res = tile_backward(model, c, t, spec, style, ct)
        grads.append(res.grad)
        for n, v in res.content.items():
            content[n] = content[n] + v if n in content else v
        tv = res.tv if tv is None else tv + res.tv
    return BackwardSums(grads, content, tv if tv is not None else torch.zeros(()))


class LocalExecutor:
    """This process, its model, its device."""

    workers = 1

    def __init__(self, model: VGGFeatures) -> None:
        self.model = model

    def statistics(self, pixels: Tensor, tiles: Sequence[Tile], spec: TileSpec, checkpointing: bool) -> Stats:
        return chunk_statistics(self.model, [_crop(pixels, t.read) for t in tiles], tiles, spec)

    def backward(self, pixels: Tensor, tiles: Sequence[Tile], spec: TileSpec, style: dict[str, StyleGradient],
                 contents: Sequence[dict[str, Tensor]], checkpointing: bool) -> BackwardSums:
        return chunk_backward(self.model, [_crop(pixels, t.read) for t in tiles], tiles, spec, style, contents)

    def close(self) -> None:
        pass


def chunks(n: int, workers: int) -> list[range]:
    """``range(n)`` cut into at most ``workers`` contiguous, near-equal, non-empty parts."""
    k = max(1, min(workers, n))
    bounds = [n * i // k for i in range(k + 1)]
    return [range(bounds[i], bounds[i + 1]) for i in range(k)]


def _to(obj: Any, device: torch.device | str) -> Any:
    """Tensors in nested dicts/lists/dataclasses moved to ``device`` (compact copies on the CPU)."""
    if isinstance(obj, Tensor):
        out = obj.detach().to(device)
        return out.clone() if out.data_ptr() == obj.data_ptr() and str(device) == "cpu" else out
    if isinstance(obj, dict):
        return {k: _to(v, device) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to(v, device) for v in obj)
    if isinstance(obj, StyleGradient):
        return StyleGradient(_to(obj.gram, device), _to(obj.total, device))
    if isinstance(obj, BackwardSums):
        return BackwardSums(_to(obj.grads, device), _to(obj.content, device), _to(obj.tv, device))
    if obj is not None and hasattr(obj, "gram") and hasattr(obj, "count"):  # LayerStats
        return type(obj)(_to(obj.gram, device), _to(obj.total, device), obj.count)
    return obj


def _model_blob(model: VGGFeatures) -> bytes:
    """The network as plain data (its conv tensors on the CPU, layer names, pooling, preprocessing): each
    worker rebuilds it with ``torch.load(weights_only=True)``, so nothing it receives can run code."""
    pre = model.preprocess
    data = {
        "arch": model.arch, "layers": list(model.layers), "pooling": model.pooling,
        "channels_last": bool(getattr(model, "_channels_last", False)),
        "preprocess": [pre.bgr, pre.scale, list(pre.mean), list(pre.std)],
        "convs": [[p.detach().to("cpu").contiguous() for p in conv.parameters()] for conv in model.convs],
    }
    buf = io.BytesIO()
    torch.save(data, buf)
    return buf.getvalue()


def _model_from_blob(blob: bytes) -> VGGFeatures:
    from impasto.vgg.preprocess import Preprocess
    from impasto.vgg.weights import VGGWeights

    d = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
    bgr, scale, mean, std = d["preprocess"]
    weights = VGGWeights(d["arch"], [(w, b) for w, b in d["convs"]],
                         Preprocess(bool(bgr), float(scale), tuple(mean), tuple(std)), "tile worker")
    return VGGFeatures(weights, d["layers"], d["pooling"]).use_channels_last(bool(d["channels_last"]))


class _Worker:
    """What a worker process or Ray actor holds: the network on its device, and the two chunk passes."""

    def __init__(self, blob: bytes, device: str, threads: int) -> None:
        if threads > 0:
            torch.set_num_threads(threads)
        self.device = torch.device(device)
        if self.device.type == "cpu":
            bound_allocator()  # a worker only ever runs tiles (see impasto.tiling.allocator)
        self.model: VGGFeatures = _model_from_blob(blob).to(self.device)

    def run(self, op: str, checkpointing: bool, args: tuple[Any, ...]) -> Any:
        self.model.checkpointing = checkpointing
        args = _to(args, self.device)
        if op == "statistics":
            out: Any = chunk_statistics(self.model, *args)
        elif op == "backward":
            out = chunk_backward(self.model, *args)
        else:
            raise ValueError(f"unknown op {op!r}")
        return _to(out, "cpu")

    def pid(self) -> int:
        return os.getpid()


def _process_main(conn: Any, device: str, threads: int) -> None:
    """A worker process: the network first, then (op, checkpointing, args) messages until ``close``."""
    try:
        worker = _Worker(conn.recv_bytes(), device, threads)
        conn.send_bytes(pickle.dumps(("ready", worker.pid())))
    except Exception:  # noqa: BLE001 - reported to the parent, which raises it
        conn.send_bytes(pickle.dumps(("error", traceback.format_exc())))
        return
    while True:
        try:
            msg = pickle.loads(conn.recv_bytes())
        except EOFError:
            return
        if msg[0] == "close":
            return
        try:
            reply = ("ok", worker.run(*msg))
        except Exception:  # noqa: BLE001
            reply = ("error", traceback.format_exc())
        conn.send_bytes(pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL))


def default_threads(devices: Sequence[str]) -> int:
    """Threads per worker: this process's torch threads shared among the CPU workers (at least 1)."""
    cpu = sum(1 for d in devices if d.endswith("cpu")) or 1
    return max(1, torch.get_num_threads() // cpu)


class _Split:
    """Shared by the process and Ray executors: chunking, cropping, central sums."""

    workers: int

    def _map(self, op: str, checkpointing: bool, args: list[tuple[Any, ...]]) -> list[Any]:
        raise NotImplementedError

    def statistics(self, pixels: Tensor, tiles: Sequence[Tile], spec: TileSpec, checkpointing: bool) -> Stats:
        parts = chunks(len(tiles), self.workers)
        args = [([_crop(pixels, tiles[i].read) for i in r], [tiles[i] for i in r], spec) for r in parts]
        results = self._map("statistics", checkpointing, [_to(a, "cpu") for a in args])
        return _to(sum_statistics(results), pixels.device)  # type: ignore[no-any-return]

    def backward(self, pixels: Tensor, tiles: Sequence[Tile], spec: TileSpec, style: dict[str, StyleGradient],
                 contents: Sequence[dict[str, Tensor]], checkpointing: bool) -> BackwardSums:
        parts = chunks(len(tiles), self.workers)
        args = [([_crop(pixels, tiles[i].read) for i in r], [tiles[i] for i in r], spec, style,
                 [contents[i] for i in r]) for r in parts]
        results: list[BackwardSums] = self._map("backward", checkpointing, [_to(a, "cpu") for a in args])
        grads = [g for res in results for g in res.grads]
        content: dict[str, Tensor] = {}
        tv = torch.zeros((), dtype=pixels.dtype)
        for res in results:
            for n, v in res.content.items():
                content[n] = content[n] + v if n in content else v
            tv = tv + res.tv
        return _to(BackwardSums(grads, content, tv), pixels.device)  # type: ignore[no-any-return]


class ProcessExecutor(_Split):
    """One spawned worker process per device, each holding the network (see the module's docstring)."""

    def __init__(self, model: VGGFeatures, devices: Sequence[str], threads: int | None = None) -> None:
        import multiprocessing as mp

        if not devices:
            raise ValueError("no devices")
        ctx = mp.get_context("spawn")
        threads = default_threads(devices) if threads is None else threads
        blob = _model_blob(model)
        self.devices = list(devices)
        self.workers = len(self.devices)
        self._conns: list[Any] = []
        self._procs: list[Any] = []
        try:
            for d in self.devices:
                parent, child = ctx.Pipe()
                proc = ctx.Process(target=_process_main, args=(child, d, threads), daemon=True,
                                   name=f"impasto-tiles-{d}")
                proc.start()
                child.close()
                self._conns.append(parent)
                self._procs.append(proc)
                parent.send_bytes(blob)
            self.pids = [int(self._receive(c)) for c in self._conns]
        except BaseException:
            self.close()
            raise

    @staticmethod
    def _reply(conn: Any) -> tuple[str, Any]:
        try:
            kind, value = pickle.loads(conn.recv_bytes())
        except (EOFError, OSError):
            return "died", None
        return kind, value

    @staticmethod
    def _check(kind: str, value: Any) -> Any:
        if kind == "died":
            raise ImpastoError("a tile worker process ended unexpectedly (out of memory?); run again, or "
                               "without --devices")
        if kind == "error":
            raise ImpastoError(f"a tile worker failed: {value.strip().splitlines()[-1]}")
        return value

    def _receive(self, conn: Any) -> Any:
        return self._check(*self._reply(conn))

    def _map(self, op: str, checkpointing: bool, args: list[tuple[Any, ...]]) -> list[Any]:
        conns = self._conns[: len(args)]
        for conn, a in zip(conns, args):
            conn.send_bytes(pickle.dumps((op, checkpointing, a), protocol=pickle.HIGHEST_PROTOCOL))
        replies = [self._reply(conn) for conn in conns]  # every reply read before one raises: none left behind
        return [self._check(*r) for r in replies]

    def close(self) -> None:
        for conn in self._conns:
            try:
                conn.send_bytes(pickle.dumps(("close",)))
            except (OSError, ValueError):
                pass
        for proc in self._procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=5)
        for conn in self._conns:
            conn.close()
        self._conns, self._procs = [], []


def ray_runtime_env() -> dict[str, Any]:
    """The ``runtime_env`` that ships this process's ``impasto`` package to Ray's workers."""
    import impasto

    return {"py_modules": [str(Path(impasto.__file__).resolve().parent)], "excludes": ["__pycache__", "*.pyc"]}


class RayExecutor(_Split):
    """``count`` Ray actors, each holding the network (``gpus``: one GPU each)."""

    def __init__(self, model: VGGFeatures, count: int, *, gpus: bool = False, threads: int = 1) -> None:
        try:
            import ray
        except ImportError:
            raise ImpastoError("devices 'ray' needs Ray: pip install 'impasto[ray]'") from None
        self._ray = ray
        if not ray.is_initialized():
            import logging

            ray.init(include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR,
                     runtime_env=ray_runtime_env())
        blob = ray.put(_model_blob(model))
        actor: Any = ray.remote(_Worker).options(num_cpus=threads, num_gpus=1 if gpus else 0)  # Ray's stubs
        self.workers = count
        self._actors: list[Any] = [actor.remote(blob, "cuda" if gpus else "cpu", threads) for _ in range(count)]
        self.pids = [int(p) for p in ray.get([a.pid.remote() for a in self._actors])]

    def _map(self, op: str, checkpointing: bool, args: list[tuple[Any, ...]]) -> list[Any]:
        refs = [a.run.remote(op, checkpointing, x) for a, x in zip(self._actors, args)]
        try:
            return list(self._ray.get(refs))
        except self._ray.exceptions.RayError as e:
            raise ImpastoError(f"a Ray tile worker failed: {' '.join(str(e).split())[-200:]}") from None

    def close(self) -> None:
        for a in self._actors:
            self._ray.kill(a)
        self._actors = []


def make_executor(model: VGGFeatures, devices: Sequence[str]) -> TileExecutor:
    """The executor for ``Config.devices``: Ray actors for ``ray`` / ``ray:cuda`` entries (all entries
    must then be Ray's), worker processes for the others."""
    ray_entries = [d for d in devices if d.startswith("ray")]
    if ray_entries:
        if len(ray_entries) != len(devices):
            raise ImpastoError("devices: ray workers cannot be mixed with local devices")
        return RayExecutor(model, len(ray_entries), gpus=all(d == "ray:cuda" for d in ray_entries))
    return ProcessExecutor(model, devices)
