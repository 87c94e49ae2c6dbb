"""The batch job model: what one job is, how it is named, and the key that makes a batch idempotent.

A :class:`JobSpec` is everything a worker needs to produce one output, and nothing about how it is run,
so any front-end (the batch CLI, the web studio) and any backend (a local process pool, Ray actors) can
share it. Its ``key`` is a sha256 over the full configuration and the bytes of every input (content,
styles, weights, mask, init image): an existing output that carries the same key in its metadata is the
result of exactly this job and is never recomputed; one with another key was made from other inputs or
settings and is replaced.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from impasto.config import Config
from impasto.errors import ImpastoError
from impasto.io import IMAGE_SUFFIXES, file_sha256
from impasto.tiling.cost import RunCost

OUTPUT_FORMATS = ("png", "jpg", "webp", "tif")
STATE_DIR = ".impasto-batch"
"""Folder inside the output folder for locks, checkpoints, worker status and the journal."""
KEY_VERSION = 1
"""Bumped when the meaning of a job key changes, so old outputs are recomputed rather than trusted."""
CONFIG_PATH_FIELDS = ("weights", "mask", "init_file")
"""Config fields that name files: the key uses their contents, not their (cwd-dependent) paths."""
MANIFEST_COLUMNS = ("content", "style", "styles", "output", "preset")
"""Manifest columns that are not Config fields; every other column must name a Config field."""


@dataclass(frozen=True)
class JobSpec:
    """One output to produce: inputs, the resolved configuration and where results and state go.

    Paths are absolute on the machine that planned the batch; a backend that runs jobs elsewhere ships
    the files named in ``inputs`` (sha256 -> path) and maps them (see :mod:`impasto.batch.ray_backend`).
    """

    name: str
    """Output file name, unique in the batch; also names the job in progress lines and the summary."""
    output: str
    content: str
    styles: tuple[str, ...]
    config: Config
    key: str
    """sha256 of the configuration and input contents (see :func:`job_key`)."""
    inputs: Mapping[str, str]
    """Every file the job reads, path -> sha256 (content, styles, and the config's file fields)."""
    workdir: str
    """This job's own folder of transient state (``OUTDIR/.impasto-batch/NAME.KEY16/``): its checkpoint
    between attempts and the worker's status file. Removed as a whole once the output is written, with
    any temporary file a killed worker left in it."""
    checkpoint_every: int | None = None
    """Steps between checkpoints; None: by time, every ``AUTO_CHECKPOINT_SECONDS`` (a checkpoint holds the
    L-BFGS history, up to a GiB at large sizes, so not every few steps); 0: none (a killed job then
    starts again from step 0)."""

    @property
    def checkpoint(self) -> str:
        return os.path.join(self.workdir, "checkpoint.ckpt")

    @property
    def status_path(self) -> str:
        """The worker's status file (pid, host, step, attempt)."""
        return os.path.join(self.workdir, "status.json")


@dataclass(frozen=True)
class JobOutput:
    """What a worker sends back: the image as 8-bit pixels (exactly what the file will hold) and stats."""

    rgb: Any
    """uint8 numpy array [H, W, 3]."""
    alpha: Any | None
    """uint8 numpy array [H, W] (the content's alpha channel) or None."""
    steps: int
    seconds: float
    """Optimisation seconds of the attempt that finished (a resumed job's earlier attempts excluded)."""
    loss: float
    attempt: int
    """1 for a first try; 2 after one lost worker, and so on (counted by the workers themselves)."""
    resumed_from: int
    """Step the finishing attempt started from (0: from scratch, >0: from a checkpoint)."""
    worker: str
    """host:pid of the process that ran the finishing attempt."""
    stop_reason: str | None = None
    restarts: int = 0


@dataclass(frozen=True)
class JobResult:
    """The outcome of one job as the batch reports it."""

    job: JobSpec
    status: str
    """``done``, ``skipped`` (output already there with the same key) or ``failed``."""
    seconds: float = 0.0
    """Wall seconds from dispatch to the written file (0 when skipped)."""
    output: JobOutput | None = None
    error: str | None = None
    note: str = ""


# -- hashing ------------------------------------------------------------------------------------------


class FileHasher:
    """sha256 of files, each read once per batch (300 photos × 4 paintings hash 304 files, not 1200)."""

    def __init__(self) -> None:
        self._cache: dict[str, str] = {}

    def __call__(self, path: str) -> str:
        real = os.path.realpath(path)
        hit = self._cache.get(real)
        if hit is None:
            hit = self._cache[real] = file_sha256(real)
        return hit


def job_key(config: Config, content_sha: str, style_shas: Sequence[str], file_shas: Mapping[str, str]) -> str:
    """The identity of a job: its configuration (file fields replaced by their contents' sha256) and inputs.

    Paths are deliberately not part of it: the same photo under another name or another working
    directory is the same job. The impasto version is not either: a new release does not invalidate a
    finished batch (the version is still recorded in every output's metadata).
    """
    cfg = config.to_dict()
    for name in CONFIG_PATH_FIELDS:
        if cfg.get(name) is not None:
            cfg[name] = "sha256:" + file_shas[name]
    payload = {"v": KEY_VERSION, "config": cfg, "content": content_sha, "styles": list(style_shas)}
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)
    return hashlib.sha256(blob.encode("ascii")).hexdigest()


# -- planning -----------------------------------------------------------------------------------------


def expand_images(items: Sequence[str], what: str) -> list[str]:
    """Image arguments with folders expanded to the images inside them (sorted by name), as absolute paths."""
    out: list[str] = []
    for item in items:
        path = Path(item).expanduser()
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
            if not found:
                raise ImpastoError(f"{what} folder {item} holds no images ({', '.join(IMAGE_SUFFIXES)})")
            out += [str(p.resolve()) for p in found]
        elif path.is_file():
            out.append(str(path.resolve()))
        else:
            raise ImpastoError(f"{what} {item} does not exist")
    return out


_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")


def _slug(text: str) -> str:
    s = _UNSAFE.sub("-", text).strip("-.")
    return s or "x"


def default_name(content: str, styles: Sequence[str], overrides: Mapping[str, Any], ext: str) -> str:
    """``CONTENT__STYLE[+STYLE2][__field-value_...].EXT``: stems of the inputs, then any per-row overrides.

    Predictable from the command line alone, so a user (or a script) knows where each result lands.
    """
    stem = _slug(Path(content).stem) + "__" + "+".join(_slug(Path(s).stem) for s in styles)
    if overrides:
        stem += "__" + "_".join(f"{_slug(k)}-{_slug(_plain_text(v))}" for k, v in overrides.items())
    return f"{stem}.{ext}"


def _plain_text(v: Any) -> str:
    if isinstance(v, (list, tuple)):
        return ",".join(str(x) for x in v)
    return str(v)


@dataclass(frozen=True)
class JobRequest:
    """One planned job before it is resolved: inputs, per-job config overrides and an optional name."""

    content: str
    styles: tuple[str, ...]
    overrides: Mapping[str, Any] = field(default_factory=dict)
    """Config field overrides from a manifest row (applied after the shared flags)."""
    preset: str | None = None
    output: str | None = None
    where: str = ""
    """Where the request came from (``manifest.csv line 4``), for error messages."""


def grid_requests(contents: Sequence[str], styles: Sequence[str]) -> list[JobRequest]:
    """Every content × every style, content-major (all styles of the first photo first)."""
    return [JobRequest(c, (s,)) for c in expand_images(contents, "content") for s in expand_images(styles, "style")]


class _TooDeep(Exception):
    pass


def _loads(text: str) -> Any:
    """``json.loads``, with nesting too deep for it (``[[[[...`` 100,000 deep) as :class:`_TooDeep`."""
    try:
        return json.loads(text)
    except RecursionError:
        raise _TooDeep from None


def _parse_cell(value: str) -> Any:
    """A CSV cell as JSON when it parses (numbers, true/false, null, [lists]), else the text itself."""
    v = value.strip()
    try:
        return _loads(v)
    except ValueError:
        return v


NAME_RESERVE = 17
"""Bytes the batch adds to an output name for its state (``.impasto-batch/NAME.KEY16/``)."""


def check_output_name(name: str, where: str) -> None:
    """A manifest's ``output`` (or a generated name) must be a plain, printable file name inside OUTDIR
    that leaves room for the batch's state names: no folders, no hidden names, no control characters (a
    NUL cannot be in a file name at all; a newline or a bidi override would mislead every listing)."""
    if "/" in name or "\\" in name or name in (".", "..") or name.startswith("."):
        raise ImpastoError(f"{where}: output {name!r} must be a plain file name inside OUTDIR")
    if "\x00" in name:
        raise ImpastoError(f"{where}: output {name!r} contains a NUL character, which no file name can hold")
    bad = [ch for ch in name if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp")]
    if bad:
        raise ImpastoError(f"{where}: output {name!r} contains a control character ({ascii(bad[0])}); "
                           "give a printable file name")
    limit = 255 - NAME_RESERVE
    size = len(name.encode("utf-8", "surrogateescape"))
    if size > limit:
        raise ImpastoError(f"{where}: output name {name[:30]}... is too long ({size} bytes; at most {limit}: "
                           "impasto batch adds to it for its state files)")


def read_manifest(path: str) -> list[JobRequest]:
    """Jobs from a ``.csv`` (header row) or ``.jsonl`` (one object a line) manifest.

    Columns: ``content``, ``style`` (several joined by ``;``, or a JSON list in ``styles``), optional
    ``output`` (a file name inside OUTDIR), ``preset``, and any Config field (``style_weight``, ``size``,
    ``seed``, ``steps``, ...) as a per-row override; an empty cell overrides nothing. Relative image paths
    are relative to the manifest's folder.
    """
    p = Path(path).expanduser()
    try:
        text = p.read_text(encoding="utf-8-sig")
    except OSError as e:
        raise ImpastoError(f"cannot read manifest {path}: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise ImpastoError(f"manifest {path} is not UTF-8 text") from None
    rows: list[tuple[str, dict[str, Any]]] = []
    if p.suffix.lower() == ".csv":
        try:
            reader = csv.DictReader(text.splitlines())
            header = reader.fieldnames
        except csv.Error as e:
            raise ImpastoError(f"{p.name} line 1: not CSV ({e})") from None
        if not header:
            raise ImpastoError(f"manifest {path} is empty (it needs a header row: content,style,...)")
        seen_cols: set[str] = set()
        for col in header:
            name = col.strip()
            if name in seen_cols:  # DictReader would keep the last cell only: a style silently dropped
                raise ImpastoError(f"{p.name} line 1: column {name or '(empty)'} appears twice in the header; "
                                   "join several styles with ';' in one style column")
            seen_cols.add(name)
        try:
            for i, raw in enumerate(reader, start=2):
                if None in raw:
                    raise ImpastoError(f"{p.name} line {i}: more cells than header columns")
                try:
                    row = {k.strip(): _parse_cell(v) for k, v in raw.items()
                           if k is not None and v is not None and v.strip()}
                except _TooDeep:
                    raise ImpastoError(f"{p.name} line {i}: a cell is nested too deeply") from None
                if row:
                    rows.append((f"{p.name} line {i}", row))
        except csv.Error as e:
            raise ImpastoError(f"{p.name} line {reader.line_num + 1}: not CSV ({e})") from None
    elif p.suffix.lower() in (".jsonl", ".ndjson"):
        for i, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                obj = _loads(line)
            except _TooDeep:
                raise ImpastoError(f"{p.name} line {i}: nested too deeply to be a manifest row") from None
            except json.JSONDecodeError as e:
                raise ImpastoError(f"{p.name} line {i}: not JSON ({e.msg})") from None
            if not isinstance(obj, dict):
                raise ImpastoError(f"{p.name} line {i}: expected a JSON object, got {type(obj).__name__}")
            rows.append((f"{p.name} line {i}", {k: v for k, v in obj.items() if v is not None and v != ""}))
    else:
        raise ImpastoError(f"manifest {path} must be .csv or .jsonl (got {p.suffix or 'no extension'})")
    if not rows:
        raise ImpastoError(f"manifest {path} lists no jobs")
    base = p.resolve().parent
    fields = set(Config.__dataclass_fields__)
    out: list[JobRequest] = []
    for where, row in rows:
        unknown = sorted(k for k in row if k not in fields and k not in MANIFEST_COLUMNS)
        if unknown:
            raise ImpastoError(f"{where}: unknown column(s) {', '.join(unknown)} (use content, style, output, "
                               "preset or a configuration field such as style_weight, size, seed)")
        if "content" not in row:
            raise ImpastoError(f"{where}: no content image")
        if "style" in row and "styles" in row:
            raise ImpastoError(f"{where}: give style or styles, not both")
        styles_val = row.get("styles", row.get("style"))
        if styles_val is None:
            raise ImpastoError(f"{where}: no style image")
        style_list = [str(s).strip() for s in styles_val] if isinstance(styles_val, list) else \
            [s.strip() for s in str(styles_val).split(";")]
        style_list = [s for s in style_list if s]
        if not style_list:  # refused here, before any job runs, not by a worker mid-batch
            raise ImpastoError(f"{where}: no style image (the style column is empty)")

        def resolve(item: str, what: str, where: str = where) -> str:
            shown = item if item.isprintable() and len(item) <= 200 else ascii(item[:200])
            q = Path(item).expanduser()
            q = q if q.is_absolute() else base / q
            try:
                found = q.is_file()
            except OSError as e:  # a name too long for the file system, a loop of links
                raise ImpastoError(f"{where}: {what} {shown}: {e.strerror or e}") from None
            if not found:
                raise ImpastoError(f"{where}: {what} {shown} does not exist")
            return str(q.resolve())

        output = row.get("output")
        if output is not None:
            output = str(output)
            check_output_name(output, where)
        preset = row.get("preset")
        overrides = {k: v for k, v in row.items() if k in fields and k not in MANIFEST_COLUMNS}
        for f in CONFIG_PATH_FIELDS:  # files named in a row are relative to the manifest too
            if isinstance(overrides.get(f), str):
                overrides[f] = resolve(overrides[f], f.replace("_", " "))
        out.append(JobRequest(
            content=resolve(str(row["content"]), "content"),
            styles=tuple(resolve(s, "style") for s in style_list),
            overrides=overrides, preset=None if preset is None else str(preset), output=output, where=where,
        ))
    return out


ConfigFor = Callable[[str | None], Config]
"""Shared configuration for a job given its preset (None: the batch-wide base); see the CLI."""


def resolve_jobs(
    requests: Iterable[JobRequest],
    outdir: str,
    config_for: ConfigFor,
    *,
    ext: str = "png",
    checkpoint_every: int | None = None,
    hasher: FileHasher | None = None,
    finalize: Callable[[Config, list[str]], tuple[Config, list[str]]] | None = None,
) -> list[JobSpec]:
    """Requests -> :class:`JobSpec` s: per-row overrides applied, names checked unique, keys computed.

    ``finalize(config, styles)`` may adjust each job's configuration and styles (the CLI resolves mask
    regions there). Raises ImpastoError for the first bad row, naming it.
    """
    hasher = hasher or FileHasher()
    out_root = Path(outdir).resolve()
    state = out_root / STATE_DIR
    jobs: list[JobSpec] = []
    seen: dict[str, str] = {}
    for req in requests:
        where = req.where or f"{Path(req.content).name} × {', '.join(Path(s).name for s in req.styles)}"
        cfg = config_for(req.preset)
        if req.overrides:
            try:
                cfg = Config.from_dict(dict(req.overrides), base=cfg)
            except ImpastoError as e:
                raise ImpastoError(f"{where}: {e}") from None
            except (TypeError, ValueError) as e:
                raise ImpastoError(f"{where}: bad configuration value ({e})") from None
        styles = list(req.styles)
        if finalize is not None:
            cfg, styles = finalize(cfg, styles)
        name_overrides = dict(req.overrides)
        if req.preset is not None:
            name_overrides = {"preset": req.preset, **name_overrides}
        name = req.output or default_name(req.content, styles, name_overrides, ext)
        check_output_name(name, where)
        if Path(name).suffix.lower().lstrip(".") not in (*OUTPUT_FORMATS, "jpeg", "tiff"):
            raise ImpastoError(f"{where}: output {name} needs one of the extensions {', '.join(OUTPUT_FORMATS)}")
        if name in seen:
            raise ImpastoError(f"{where} and {seen[name]} both write {name}; give the rows distinct 'output' "
                               "names in a manifest")
        seen[name] = where
        # Workers may run in another folder (or on another machine): file fields become absolute paths.
        absolute = {f: str(Path(getattr(cfg, f)).expanduser().resolve())
                    for f in CONFIG_PATH_FIELDS if getattr(cfg, f) is not None}
        if absolute:
            cfg = cfg.replace(**absolute)
        file_shas = {f: hasher(path) for f, path in absolute.items()}
        content_sha = hasher(req.content)
        style_shas = [hasher(s) for s in styles]
        key = job_key(cfg, content_sha, style_shas, file_shas)
        inputs = {req.content: content_sha, **dict(zip(styles, style_shas))}
        for f, sha in file_shas.items():
            inputs[absolute[f]] = sha
        output = out_root / name
        for inp in inputs:
            if os.path.realpath(inp) == str(output):
                raise ImpastoError(f"{where}: output {output} is one of the job's inputs; refusing to overwrite it")
        jobs.append(JobSpec(
            name=name, output=str(output), content=req.content, styles=tuple(styles), config=cfg, key=key,
            inputs=inputs, workdir=str(state / f"{name}.{key[:16]}"), checkpoint_every=checkpoint_every,
        ))
    if not jobs:
        raise ImpastoError("the batch has no jobs")
    return jobs


__all__ = [
    "FileHasher", "JobOutput", "JobRequest", "JobResult", "JobSpec", "STATE_DIR", "default_name", "expand_images",
    "grid_requests", "job_key", "read_manifest", "resolve_jobs",
]


def job_cost(job: JobSpec, *, share: int = 1) -> RunCost:
    """What ``job`` will cost on this machine, before it runs: :func:`impasto.tiling.cost.config_cost` with
    the images' sizes as the engine loads them, ``max_memory`` resolved here as a worker would resolve it
    (``auto``: this machine's available memory now, split among ``share`` local workers), the device its
    ``device`` names and the step rate measured on this machine now (:func:`impasto.engine.measure_rate`).
    The network is its structure only (the bundled VGG19's architecture, or ``--weights`` read for its
    shapes)."""
    from impasto.engine import measure_rate
    from impasto.inputs import resolve_device
    from impasto.io import load_image
    from impasto.tiling.cost import MEASURED_RATE, config_cost, structure_for
    from impasto.tiling.memory import resolve_budget

    cfg = job.config
    device = resolve_device(cfg.device)
    name = "cpu" if device.type == "cpu" else str(device)
    hws = []
    for path in (job.content, *job.styles):
        rgb = load_image(path).rgb
        hws.append((int(rgb.shape[-2]), int(rgb.shape[-1])))
    structure = structure_for(cfg)
    return config_cost(cfg, hws[0], hws[1:], budget=resolve_budget(cfg.max_memory, name, share=share), device=name,
                       weights=structure, rate=measure_rate(cfg, structure), rate_source=MEASURED_RATE)
