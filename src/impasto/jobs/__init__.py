"""The job layer, between the engine and the front-ends: what a job is (:class:`JobSpec`), how its
configuration is resolved (:func:`resolve`), how it runs (:class:`JobRun`: one checkpoint format, one
checkpoint policy, stop / cancel, the result written with its metadata) and who may write its output
(:func:`claim_output`). The command line, the studio, batch and video all run jobs through it."""

from impasto.jobs.outputs import checkpoint_for, claim_output, interrupted_for, output_for
from impasto.jobs.resolve import expand_styles, for_preset_run, load_config_file, resolve, resolve_region_styles
from impasto.jobs.run import JobControl, JobEvent, JobRun, run_job
from impasto.jobs.spec import (
    AUTO_CHECKPOINT_SECONDS,
    CheckpointPolicy,
    Eta,
    JobSpec,
    fmt_time,
    result_metadata,
    thin_history,
)

__all__ = [
    "AUTO_CHECKPOINT_SECONDS", "CheckpointPolicy", "Eta", "JobControl", "JobEvent", "JobRun", "JobSpec",
    "checkpoint_for", "claim_output", "expand_styles", "fmt_time", "for_preset_run", "interrupted_for",
    "load_config_file", "output_for", "resolve", "resolve_region_styles", "result_metadata", "run_job",
    "thin_history",
]
