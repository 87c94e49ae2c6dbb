"""Benchmarks: :mod:`impasto.bench.perf` (the side-by-side table, time to quality, GPU extras) and
:mod:`impasto.bench.protocol` (interleaved, repeated step times and fresh-process end-to-end times)."""
