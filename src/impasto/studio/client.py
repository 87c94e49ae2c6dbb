"""A small Python client for the studio's job API (``impasto serve``), for scripts.

    from impasto.studio.client import StudioClient
    with StudioClient("http://127.0.0.1:8000") as c:
        job = c.submit("photo.jpg", ["painting.jpg"], config={"size": 256, "steps": 50})
        for event, data in c.events(job["id"]):
            print(event, data.get("step"))
        c.download(job["id"], "out.png")

Every error the server reports becomes a :class:`StudioError` (an :class:`~impasto.errors.ImpastoError`)
carrying the HTTP status and the server's one-line detail. Needs ``httpx`` (the ``web`` extra).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from impasto.errors import ImpastoError

FINISHED = ("done", "failed", "cancelled")


class StudioError(ImpastoError):
    """An error answer from the server (``status``: the HTTP status; 0 when it could not be reached)."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class StudioClient:
    """The job API over HTTP. ``token``: the server's ``--token`` (default: ``$IMPASTO_TOKEN``)."""

    def __init__(self, url: str = "http://127.0.0.1:8000", *, token: str | None = None, timeout: float = 60.0) -> None:
        try:
            import httpx
        except ImportError:
            raise ImpastoError("impasto.studio.client needs httpx: pip install 'impasto[web]'") from None
        self._httpx = httpx
        token = token if token is not None else os.environ.get("IMPASTO_TOKEN")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def __enter__(self) -> StudioClient:
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _request(self, method: str, path: str, **kw: Any) -> Any:
        try:
            r = self._http.request(method, path, **kw)
        except self._httpx.HTTPError as e:
            raise StudioError(f"cannot reach the studio at {self.url}: {e}") from None
        if r.status_code >= 400:
            try:
                detail = r.json().get("detail", r.text)
            except ValueError:
                detail = r.text.strip() or r.reason_phrase
            raise StudioError(f"{detail} (HTTP {r.status_code})", r.status_code)
        return r

    # -- the API ----------------------------------------------------------------------------------
    def submit(self, content: str | os.PathLike[str], styles: Sequence[str | os.PathLike[str]], *,
               config: dict[str, Any] | None = None, preset: str | None = None) -> dict[str, Any]:
        """Queue a job; returns it (``id``, ``state`` "queued", ``total_steps``...)."""
        if not styles:
            raise ImpastoError("at least one style image is needed")
        paths = [Path(content), *(Path(s) for s in styles)]
        try:
            blobs = [p.read_bytes() for p in paths]
        except OSError as e:
            raise ImpastoError(f"cannot read {e.filename}: {e.strerror}") from None
        files = [("content" if i == 0 else "style", (p.name, b, "application/octet-stream"))
                 for i, (p, b) in enumerate(zip(paths, blobs))]
        data: dict[str, str] = {}
        if config:
            data["config"] = json.dumps(config)
        if preset:
            data["preset"] = preset
        result: dict[str, Any] = self._request("POST", "/api/jobs", files=files, data=data).json()
        return result

    def jobs(self, state: str | None = None) -> list[dict[str, Any]]:
        """All jobs, newest first (``state``: only those, e.g. "done" or "queued,running")."""
        params = {"state": state} if state else {}
        out: list[dict[str, Any]] = self._request("GET", "/api/jobs", params=params).json()
        return out

    def job(self, job_id: str) -> dict[str, Any]:
        out: dict[str, Any] = self._request("GET", f"/api/jobs/{job_id}").json()
        return out

    def cancel(self, job_id: str) -> dict[str, Any]:
        out: dict[str, Any] = self._request("POST", f"/api/jobs/{job_id}/cancel").json()
        return out

    def delete(self, job_id: str) -> None:
        self._request("DELETE", f"/api/jobs/{job_id}")

    def preview(self, job_id: str) -> bytes:
        """The latest preview, PNG bytes."""
        content: bytes = self._request("GET", f"/api/jobs/{job_id}/preview").content
        return content

    def result(self, job_id: str) -> bytes:
        """The final PNG (with its metadata); StudioError 409 until the job is done."""
        content: bytes = self._request("GET", f"/api/jobs/{job_id}/result").content
        return content

    def download(self, job_id: str, path: str | os.PathLike[str]) -> Path:
        """Save the result to ``path`` atomically."""
        from impasto.io.atomic import atomic_write_bytes

        data = self.result(job_id)
        out = Path(path)
        try:
            atomic_write_bytes(out, data)
        except OSError as e:
            raise ImpastoError(f"cannot write {out}: {e.strerror or e}") from None
        return out

    def events(self, job_id: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """The job's Server-Sent Events as (event, data) pairs, until the ``end`` event (included)."""
        try:
            with self._http.stream("GET", f"/api/jobs/{job_id}/events", timeout=None) as s:
                if s.status_code >= 400:
                    s.read()
                    raise StudioError(f"{s.json().get('detail', s.text)} (HTTP {s.status_code})", s.status_code)
                kind = "message"
                for line in s.iter_lines():
                    if line.startswith("event: "):
                        kind = line[7:]
                    elif line.startswith("data: "):
                        data = json.loads(line[6:])
                        yield kind, data
                        if kind == "end":
                            return
                    elif not line:
                        kind = "message"
        except self._httpx.HTTPError as e:
            raise StudioError(f"the event stream from {self.url} broke: {e}") from None

    def wait(self, job_id: str, timeout: float | None = None, poll: float = 1.0) -> dict[str, Any]:
        """Poll until the job has finished (done, failed or cancelled); returns it."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            job = self.job(job_id)
            if job["state"] in FINISHED:
                return job
            if deadline is not None and time.monotonic() > deadline:
                raise StudioError(f"job {job_id} is still {job['state']} after {timeout} s")
            time.sleep(poll)


__all__ = ["StudioClient", "StudioError"]
