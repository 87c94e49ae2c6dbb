"""Measurements: ``perf`` (step time, memory, time to quality against pastiche), ``protocol`` (interleaved,
repeated step times with their uncertainty, and fresh-process end-to-end times) and ``quality`` (an
independent judge of how stylised a result is). ``python -m impasto.bench [perf|protocol|quality] ...``."""
