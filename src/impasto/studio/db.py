"""The studio's job table: one SQLite file under the data folder, WAL mode, versioned migrations.

Why SQLite: the queue must outlive the server process (a ``kill -9`` loses no job), several threads of
one server read and write it, and a single file is trivial to back up. WAL lets the API read while a
worker's progress is being written. The schema version lives in ``PRAGMA user_version``; each entry of
:data:`MIGRATIONS` moves the file one version up inside one transaction, so a server upgraded in place
migrates old data, and a file from a newer impasto is refused instead of being damaged.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from impasto.errors import ImpastoError

STATES = ("queued", "running", "done", "failed", "cancelled")
FINISHED = ("done", "failed", "cancelled")

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # 1: the job table.
    (
        """CREATE TABLE jobs (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            state TEXT NOT NULL,
            created REAL NOT NULL,
            started REAL,
            finished REAL,
            step INTEGER NOT NULL DEFAULT 0,
            total_steps INTEGER NOT NULL DEFAULT 0,
            loss REAL,
            config TEXT NOT NULL,
            error TEXT,
            content TEXT NOT NULL,
            styles TEXT NOT NULL
        )""",
    ),
    # 2: resume bookkeeping (steps a restart went back to, attempts), the preview step, run figures.
    (
        "ALTER TABLE jobs ADD COLUMN preview_step INTEGER",
        "ALTER TABLE jobs ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE jobs ADD COLUMN resumes TEXT NOT NULL DEFAULT '[]'",
        "ALTER TABLE jobs ADD COLUMN seconds REAL",
        "CREATE INDEX jobs_state ON jobs (state, seq)",
    ),
    # 3: the quick draft a full run follows (the page shows the two as one card).
    (
        "ALTER TABLE jobs ADD COLUMN draft TEXT",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)


@dataclass(frozen=True)
class Upload:
    """An uploaded image as stored: its content hash, the sniffed format's extension, the name given."""

    sha256: str
    ext: str
    name: str

    def to_dict(self) -> dict[str, str]:
        return {"sha256": self.sha256, "ext": self.ext, "name": self.name}

    @staticmethod
    def from_dict(d: dict[str, Any]) -> Upload:
        return Upload(sha256=str(d["sha256"]), ext=str(d["ext"]), name=str(d["name"]))


@dataclass(frozen=True)
class Job:
    """One row of the job table."""

    id: str
    state: str
    created: float
    config: dict[str, Any]
    content: Upload
    styles: tuple[Upload, ...]
    started: float | None = None
    finished: float | None = None
    step: int = 0
    total_steps: int = 0
    loss: float | None = None
    error: str | None = None
    preview_step: int | None = None
    attempts: int = 0
    resumes: tuple[dict[str, Any], ...] = field(default_factory=tuple)
    """One entry per restart of a running job: ``{"from_step": checkpoint step, "reached": last step seen}``."""
    seconds: float | None = None
    draft: str | None = None
    """The id of the quick draft posted before this run with the same settings (None: no draft)."""

    def to_api(self) -> dict[str, Any]:
        """The JSON the API returns for a job (the contract's fields first)."""
        return {
            "id": self.id, "state": self.state, "step": self.step, "total_steps": self.total_steps,
            "loss": self.loss, "config": self.config, "error": self.error,
            "created": self.created, "finished": self.finished,
            "started": self.started, "seconds": self.seconds, "preview_step": self.preview_step,
            "content": {"name": self.content.name},
            "styles": [{"name": s.name} for s in self.styles],
            "attempts": self.attempts, "resumes": list(self.resumes), "draft": self.draft,
        }


_COLUMNS = (
    "id, state, created, started, finished, step, total_steps, loss, config, error, content, styles, "
    "preview_step, attempts, resumes, seconds, draft"
)


def _row_to_job(r: sqlite3.Row) -> Job:
    return Job(
        id=r["id"], state=r["state"], created=r["created"], started=r["started"], finished=r["finished"],
        step=r["step"], total_steps=r["total_steps"], loss=r["loss"], config=json.loads(r["config"]),
        error=r["error"], content=Upload.from_dict(json.loads(r["content"])),
        styles=tuple(Upload.from_dict(s) for s in json.loads(r["styles"])),
        preview_step=r["preview_step"], attempts=r["attempts"], resumes=tuple(json.loads(r["resumes"])),
        seconds=r["seconds"], draft=r["draft"],
    )


class JobDB:
    """Thread-safe access to the job table (one connection, serialised by a lock: writes are tiny)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            self._conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=10.0)
        except sqlite3.Error as e:
            raise ImpastoError(f"cannot open the job database {path}: {e}") from None
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        # NORMAL is durable across a process crash in WAL mode (only a power loss can drop the last commit).
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA foreign_keys=ON")
        self.migrate()

    # -- schema ---------------------------------------------------------------------------------
    @property
    def version(self) -> int:
        return int(self._conn.execute("PRAGMA user_version").fetchone()[0])

    def migrate(self) -> None:
        """Bring the file up to :data:`SCHEMA_VERSION`, one transaction per migration."""
        with self._lock:
            current = self.version
            if current > SCHEMA_VERSION:
                raise ImpastoError(
                    f"{self.path} was written by a newer impasto (schema {current}, this one knows "
                    f"{SCHEMA_VERSION}); upgrade impasto or use another --data folder"
                )
            for version in range(current, SCHEMA_VERSION):
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    for stmt in MIGRATIONS[version]:
                        self._conn.execute(stmt)
                    self._conn.execute(f"PRAGMA user_version = {version + 1}")
                    self._conn.execute("COMMIT")
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # -- jobs -----------------------------------------------------------------------------------
    def insert(self, job: Job, *, max_queued: int | None = None) -> bool:
        """Add a queued job; False (nothing written) when ``max_queued`` jobs are already waiting."""
        with self._tx() as c:
            if max_queued is not None:
                n = c.execute("SELECT COUNT(*) FROM jobs WHERE state = 'queued'").fetchone()[0]
                if n >= max_queued:
                    return False
            c.execute(
                "INSERT INTO jobs (id, state, created, config, content, styles, total_steps, draft) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (job.id, job.state, job.created, json.dumps(job.config), json.dumps(job.content.to_dict()),
                 json.dumps([s.to_dict() for s in job.styles]), job.total_steps, job.draft),
            )
        return True

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            r = self._conn.execute(f"SELECT {_COLUMNS} FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return _row_to_job(r) if r is not None else None

    def list_jobs(
        self, *, states: tuple[str, ...] | None = None, limit: int = 500, oldest_first: bool = False
    ) -> list[Job]:
        order = "ASC" if oldest_first else "DESC"
        q = f"SELECT {_COLUMNS} FROM jobs"
        args: list[Any] = []
        if states:
            q += f" WHERE state IN ({','.join('?' for _ in states)})"
            args.extend(states)
        q += f" ORDER BY seq {order} LIMIT ?"
        args.append(int(limit))
        with self._lock:
            rows = self._conn.execute(q, args).fetchall()
        return [_row_to_job(r) for r in rows]

    def count(self, state: str) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM jobs WHERE state = ?", (state,)).fetchone()[0])

    def update(self, job_id: str, *, only_if: tuple[str, ...] | None = None, **values: Any) -> bool:
        """Set columns of one job; with ``only_if``, only while its state is one of those. True if written."""
        if not values:
            return False
        cols = []
        args: list[Any] = []
        for k, v in values.items():
            if k not in _COLUMNS.split(", ") or k == "id":
                raise ValueError(f"unknown job column {k}")
            cols.append(f"{k} = ?")
            args.append(json.dumps(list(v)) if k == "resumes" else v)
        q = f"UPDATE jobs SET {', '.join(cols)} WHERE id = ?"
        args.append(job_id)
        if only_if:
            q += f" AND state IN ({','.join('?' for _ in only_if)})"
            args.extend(only_if)
        with self._tx() as c:
            return c.execute(q, args).rowcount > 0

    def claim_next(self) -> Job | None:
        """The oldest queued job, marked running in the same transaction (so two threads never share one)."""
        with self._tx() as c:
            r = c.execute(f"SELECT {_COLUMNS} FROM jobs WHERE state = 'queued' ORDER BY seq ASC LIMIT 1").fetchone()
            if r is None:
                return None
            now = time.time()
            c.execute(
                "UPDATE jobs SET state = 'running', started = COALESCE(started, ?), attempts = attempts + 1 "
                "WHERE id = ?", (now, r["id"]),
            )
        job = _row_to_job(r)
        return Job(**{**job.__dict__, "state": "running", "started": job.started or now, "attempts": job.attempts + 1})

    def requeue_interrupted(self) -> list[Job]:
        """Jobs a previous server left running (it was killed): back to the queue, to resume. Oldest first."""
        with self._tx() as c:
            rows = c.execute(f"SELECT {_COLUMNS} FROM jobs WHERE state = 'running' ORDER BY seq ASC").fetchall()
            c.execute("UPDATE jobs SET state = 'queued' WHERE state = 'running'")
        return [_row_to_job(r) for r in rows]

    def delete(self, job_id: str) -> bool:
        with self._tx() as c:
            return c.execute("DELETE FROM jobs WHERE id = ?", (job_id,)).rowcount > 0

    def referenced_uploads(self) -> set[str]:
        """sha256 of every upload some job still uses (the rest may be removed)."""
        with self._lock:
            rows = self._conn.execute("SELECT content, styles FROM jobs").fetchall()
        out: set[str] = set()
        for r in rows:
            out.add(json.loads(r["content"])["sha256"])
            out.update(s["sha256"] for s in json.loads(r["styles"]))
        return out
