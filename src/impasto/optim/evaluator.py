"""One loss evaluation (forward and backward to the pixels), replayed as a CUDA graph on NVIDIA GPUs.

At 256-512 px a style-transfer step on a modern GPU is bound by the CPU: about 200 kernel launches and
the Python of autograd take longer than the GPU's arithmetic (measured on an H100: forward+backward
~6 ms from Python, ~1.5 ms for a forward alone at both sizes). The pixels tensor keeps its address for
a whole scale (optimisers update it in place), and so do the targets, so the whole evaluation can be
captured once per scale and replayed with one launch. Elsewhere (CPU, MPS) it runs eagerly.

Capture has a memory cost: the graph keeps its own pool, as large as one evaluation's peak, while the
eager warm-up's freed blocks stay in the allocator's cache. On an H200 the default run at 8192 px (a
whole-image scale modelled at 101 GiB) ran out of memory at its capture with 98 GiB allocated and
138 GiB reserved. So the cache is emptied before capture (the warm-up's blocks go back to the device),
a capture that runs out of memory falls back to eager evaluation, and the engine captures only scales
small enough for the launches to matter (:data:`GRAPH_MAX_PIXELS`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

LossFn = Callable[[Tensor], Sequence[Tensor]]
GRAPH_MAX_PIXELS = 4 * 2**20
"""Largest scale (H·W) the engine captures. On an H200 a step took 30 ms at 2048 x 1366 px and 56 ms
at 2896 x 1932 (5.6 Mpx), graphs on; the launches a graph saves are a few ms of Python a step whatever
the size. Above about 4 Mpx a graph buys little and costs the memory of a second pool
(``docs/perf/print_size_gpu_8192_auto_graph_oom.json``)."""


class LossEvaluator:
    """``evaluator()`` sets ``x.grad`` to d(outputs[0])/dx and returns ``fn(x)``'s output tensors."""

    def __init__(self, fn: LossFn, x: Tensor, *, graph: bool | None = None, warmup: int = 2) -> None:
        self.fn = fn
        self.x = x
        if graph is None:
            graph = x.is_cuda  # Config.cuda_graph turns it off (benchmarking the eager path, debugging)
        self.use_graph = graph
        self.warmup = warmup
        self.calls = 0
        self._graph: torch.cuda.CUDAGraph | None = None
        self._static: list[Tensor] = []

    def _eager(self) -> list[Tensor]:
        if self.x.grad is not None:
            self.x.grad.zero_()
        outs = list(self.fn(self.x))
        outs[0].backward()  # type: ignore[no-untyped-call]
        return outs

    def _capture(self) -> None:
        # Capture assigns x.grad inside the graph's memory pool (grad is None at capture), so every
        # replay overwrites it rather than accumulating into it.
        self.x.grad = None
        torch.cuda.synchronize()
        torch.cuda.empty_cache()  # the warm-up's cached blocks: the graph's pool needs that memory
        graph = torch.cuda.CUDAGraph()
        failed = False
        outs: list[Tensor] = []
        try:
            with torch.cuda.graph(graph):
                outs = list(self.fn(self.x))
                outs[0].backward()  # type: ignore[no-untyped-call]
        except RuntimeError:
            # Not capturable (a host sync, a CPU tensor) or out of memory: stay eager. The partial
            # capture's pool is released once the exception and the graph are gone, below.
            failed = True
        if failed:
            self.use_graph = False
            self.x.grad = None
            outs = []  # tensors of the partial capture would keep its pool alive
            del graph
            torch.cuda.synchronize()
            torch.cuda.empty_cache()
            return
        self._graph = graph
        self._static = [o.detach() for o in outs]

    def __call__(self) -> list[Tensor]:
        self.calls += 1
        if not self.x.is_cuda:
            return self._eager()
        # The convolutions already run in TF32 (cuDNN's default in PyTorch); let the Gram matrices'
        # matmuls do the same while impasto evaluates its loss (about 1.2 ms of 6.6 per step at 512 px
        # on an H100, same losses), and leave the caller's global setting as it was.
        matmul = torch.backends.cuda.matmul
        before = matmul.allow_tf32
        matmul.allow_tf32 = True
        try:
            return self._call_cuda()
        finally:
            matmul.allow_tf32 = before

    def _call_cuda(self) -> list[Tensor]:
        if not self.use_graph:
            return self._eager()
        if self._graph is None:
            if self.calls <= self.warmup:
                # Warm-up runs on a side stream, as CUDA graph capture requires (cuDNN/cuBLAS set-up).
                stream = torch.cuda.Stream()  # type: ignore[no-untyped-call]
                stream.wait_stream(torch.cuda.current_stream())
                with torch.cuda.stream(stream):
                    outs = self._eager()
                torch.cuda.current_stream().wait_stream(stream)
                return outs
            self._capture()
            if self._graph is None:
                return self._eager()
        assert self._graph is not None
        self._graph.replay()
        return self._static
