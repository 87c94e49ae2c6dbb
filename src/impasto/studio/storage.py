"""The data folder: where uploads, previews, results and checkpoints live, and how names are made.

Safety rule: no string from a request ever becomes part of a path. Uploads are named by the sha256 of
their bytes plus an extension chosen from the *sniffed* format (never the file name given); job folders
by the job id, which the server generates and which every route checks against :data:`JOB_ID_RE` before
any lookup. The file names a user gave are kept only as display text in the database.

Layout::

    DATA/studio.sqlite3          the job table (see impasto.studio.db)
    DATA/uploads/<sha256>.<ext>  every image uploaded, once per content
    DATA/jobs/<id>/preview.png   latest preview (atomic replace)
    DATA/jobs/<id>/result.png    final image with metadata
    DATA/jobs/<id>/checkpoint    the resumable run state (impasto.checkpoint)
    DATA/jobs/<id>/worker.log    the job process's stderr (for a crash's last words)
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import re
import secrets
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from impasto.errors import ImpastoError
from impasto.io.atomic import atomic_write_bytes

JOB_ID_RE = re.compile(r"^[A-Za-z0-9_-]{22}$")
"""Job ids: 16 random bytes, URL-safe base64 (128 bits: unguessable)."""
SHA_RE = re.compile(r"^[0-9a-f]{64}$")

# Sniffed Pillow format -> the extension the upload is stored under. Only formats the engine reads.
ACCEPTED_FORMATS: dict[str, str] = {
    "PNG": "png", "JPEG": "jpg", "WEBP": "webp", "TIFF": "tif", "BMP": "bmp", "GIF": "gif",
}


class UploadError(ImpastoError):
    """A rejected upload; ``status`` is the HTTP status that says why (413 too big, 415 not an image)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def new_job_id() -> str:
    return secrets.token_urlsafe(16)


def valid_job_id(job_id: str) -> bool:
    return bool(JOB_ID_RE.fullmatch(job_id))


@dataclass(frozen=True)
class SniffedImage:
    sha256: str
    ext: str
    width: int
    height: int


def sniff_image(data: bytes, *, max_bytes: int, max_pixels: int, what: str) -> SniffedImage:
    """Check an upload from its bytes alone: size, real format (not the name), pixel count, full decode.

    The pixel limit is checked from the header before anything is decoded (a decompression bomb costs
    nothing); Pillow's own bomb guard stays on as a second fence.
    """
    if len(data) > max_bytes:
        raise UploadError(f"{what} is {len(data):,} bytes, over the {max_bytes:,}-byte upload limit", 413)
    if not data:
        raise UploadError(f"{what} is empty", 400)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
    except (UnidentifiedImageError, Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise UploadError(f"{what} is not an image impasto can read (PNG, JPEG, WebP, TIFF, BMP, GIF)", 415) from None
    except Exception:  # noqa: BLE001 - malformed headers raise all sorts
        raise UploadError(f"{what} is not an image impasto can read (PNG, JPEG, WebP, TIFF, BMP, GIF)", 415) from None
    with img:
        fmt = img.format or ""
        if fmt not in ACCEPTED_FORMATS:
            raise UploadError(f"{what} is a {fmt or 'unknown'} file; send PNG, JPEG, WebP, TIFF, BMP or GIF", 415)
        w, h = img.size
        if w * h > max_pixels:
            raise UploadError(
                f"{what} is {w}x{h} = {w * h:,} pixels, over the {max_pixels:,}-pixel limit", 413
            )
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                img.load()
        except Exception:  # noqa: BLE001 - truncated or corrupt data
            raise UploadError(f"{what} is a damaged {fmt} file (it does not decode)", 415) from None
    return SniffedImage(sha256=hashlib.sha256(data).hexdigest(), ext=ACCEPTED_FORMATS[fmt], width=w, height=h)


class DataDir:
    """Paths under the data folder, built only from server-made names."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        try:
            for p in (self.root, self.uploads, self.jobs_root):
                p.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ImpastoError(f"cannot create the data folder {root}: {e.strerror or e}") from None

    @property
    def db_path(self) -> Path:
        return self.root / "studio.sqlite3"

    @property
    def lock_path(self) -> Path:
        return self.root / "server.lock"

    @property
    def uploads(self) -> Path:
        return self.root / "uploads"

    @property
    def jobs_root(self) -> Path:
        return self.root / "jobs"

    def upload_path(self, sha256: str, ext: str) -> Path:
        if not SHA_RE.fullmatch(sha256) or ext not in ACCEPTED_FORMATS.values():
            raise ValueError("not a stored upload name")
        return self.uploads / f"{sha256}.{ext}"

    def store_upload(self, data: bytes, sniffed: SniffedImage) -> Path:
        path = self.upload_path(sniffed.sha256, sniffed.ext)
        if not path.exists():  # same bytes, same name: stored once
            atomic_write_bytes(path, data)
        return path

    def job_dir(self, job_id: str) -> Path:
        if not valid_job_id(job_id):
            raise ValueError("not a job id")
        return self.jobs_root / job_id

    def preview_path(self, job_id: str) -> Path:
        return self.job_dir(job_id) / "preview.png"

    def result_path(self, job_id: str) -> Path:
        return self.job_dir(job_id) / "result.png"

    def checkpoint_path(self, job_id: str) -> Path:
        return self.job_dir(job_id) / "checkpoint.pt"

    def log_path(self, job_id: str) -> Path:
        return self.job_dir(job_id) / "worker.log"

    def remove_job(self, job_id: str) -> None:
        shutil.rmtree(self.job_dir(job_id), ignore_errors=True)

    def remove_unreferenced_uploads(self, keep: set[str]) -> None:
        for p in self.uploads.iterdir():
            sha = p.name.split(".", 1)[0]
            if SHA_RE.fullmatch(sha) and sha not in keep:
                with contextlib.suppress(OSError):
                    p.unlink()
