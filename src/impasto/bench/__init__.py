"""Measurements: ``perf`` (step time, memory, time to quality against pastiche) and ``quality`` (an
independent judge of how stylised a result is). ``python -m impasto.bench [perf|quality] ...``."""
