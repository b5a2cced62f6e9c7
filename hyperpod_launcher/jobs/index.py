"""The job index: one SQLite row per launch, for `jobs` and for finding a job by reference.

`$HPL_STATE_DIR` (default `$XDG_STATE_HOME/hyperpod-launcher`, i.e.
`~/.local/state/hyperpod-launcher`)/`jobs.db`, in WAL mode: concurrent launches write their
rows without waiting for readers, and a killed writer leaves no torn row. A launch's row is
written before its job can start (state `submitting`) and updated after; it carries the
launch's whole record, so a job whose folder was deleted can still be followed and cancelled.
The index of earlier versions (`jobs.jsonl`) is migrated the first time, and kept beside it
as `jobs.jsonl.migrated`.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

from hyperpod_launcher.jobs.records import RECORD, JobRecord, read_record, state_dir
from hyperpod_launcher.util.errors import LauncherError, UserError

DATABASE = "jobs.db"
OLD_INDEX = "jobs.jsonl"
MIGRATED_SUFFIX = ".migrated"
SCHEMA_VERSION = 1
# What `jobs` shows and lifecycle needs to ask a backend; the whole record is read only for
# the one launch a command acts on.
LISTED = ("launch_id", "name", "backend", "job_id", "job_dir", "submitted_at", "submit_status")
SCHEMA = """
CREATE TABLE IF NOT EXISTS launches (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    launch_id TEXT UNIQUE,
    name TEXT NOT NULL,
    backend TEXT NOT NULL,
    job_id TEXT,
    job_dir TEXT NOT NULL,
    submitted_at TEXT,
    submit_status TEXT,
    record TEXT NOT NULL,
    final_status TEXT
);
CREATE INDEX IF NOT EXISTS launches_by_name ON launches (name);
CREATE INDEX IF NOT EXISTS launches_by_job_id ON launches (job_id);
CREATE INDEX IF NOT EXISTS launches_by_job_dir ON launches (job_dir);
"""


class IndexUnusable(LauncherError):
    """The index cannot be read or written; the message says the way out."""


def index_path() -> Path:
    return state_dir() / DATABASE


def _unreadable(path: Path, err: Exception) -> IndexUnusable:
    return IndexUnusable(
        f"the job index {path} cannot be used ({err}); move it aside "
        f"(mv {path} {path}.broken) and the next command starts a new one: each launch's "
        "job.json in its job folder is unaffected"
    )


@contextmanager
def connect() -> Iterator[sqlite3.Connection]:
    """The index, created (and an earlier version's migrated) on first use."""
    path = index_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fresh = not path.exists()
        conn = sqlite3.connect(path, timeout=60, isolation_level=None)
    except (OSError, sqlite3.Error) as err:
        raise _unreadable(path, err) from None
    with closing(conn):
        try:
            if fresh:
                os.chmod(path, 0o600)
            if conn.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
                _create(conn, path)
            yield conn
        except sqlite3.DatabaseError as err:
            raise _unreadable(path, err) from None


def _create(conn: sqlite3.Connection, path: Path) -> None:
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("BEGIN IMMEDIATE")  # one process creates and migrates; the others wait
    try:
        if conn.execute("PRAGMA user_version").fetchone()[0] >= SCHEMA_VERSION:
            conn.execute("COMMIT")
            return
        for statement in SCHEMA.split(";"):  # not executescript: it would commit first
            if statement.strip():
                conn.execute(statement)
        migrated = _migrate(conn, path.parent / OLD_INDEX)
        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    if migrated is not None:
        old = path.parent / OLD_INDEX
        os.replace(old, old.with_name(OLD_INDEX + MIGRATED_SUFFIX))
        count, skipped = migrated
        note = f"; skipped {skipped} unreadable line(s)" if skipped else ""
        print(
            f"note: moved {count} launch(es) from {old} into the job index {path}{note}; "
            f"the old file is kept as {old.name}{MIGRATED_SUFFIX}",
            file=sys.stderr,
        )


def _migrate(conn: sqlite3.Connection, old: Path) -> tuple[int, int] | None:
    """Rows for every readable line of an earlier version's index: (moved, skipped)."""
    try:
        data = old.read_bytes()
    except FileNotFoundError:
        return None
    moved = skipped = 0
    for raw in data.splitlines():
        if not raw.strip():
            continue
        try:
            record = JobRecord.from_dict(json.loads(raw.decode()))
        except (UnicodeDecodeError, ValueError, TypeError, AttributeError):
            skipped += 1
            continue
        _upsert(conn, record)
        moved += 1
    return moved, skipped


def _upsert(conn: sqlite3.Connection, record: JobRecord) -> None:
    row = {key: getattr(record, key) for key in LISTED}
    row["record"] = json.dumps(record.to_dict(), sort_keys=True)
    columns = ", ".join(row)
    updates = ", ".join(f"{key} = excluded.{key}" for key in row if key != "launch_id")
    updates += ", final_status = NULL"
    conn.execute(
        f"INSERT INTO launches ({columns}) VALUES ({', '.join('?' * len(row))}) "
        f"ON CONFLICT (launch_id) DO UPDATE SET {updates}",
        tuple(row.values()),
    )


def put(record: JobRecord) -> None:
    """Add a launch, or update its row (one row per launch id)."""
    with connect() as conn:
        _upsert(conn, record)


# A row of `listing`: the LISTED columns, then the remembered final status (JSON) or None.
ListedRow = tuple[Any, ...]


def listed_record(row: ListedRow) -> JobRecord:
    """A listing's row as a record of the listed fields."""
    values = dict(zip(LISTED, row[: len(LISTED)], strict=True))
    return JobRecord(**values)


def listing(limit: int | None) -> list[ListedRow]:
    """The newest `limit` launches (every one when None), oldest first: the listed fields
    only, and the final status (JSON text) remembered for those known to have ended. Plain
    rows, so that listing many launches builds no object per launch."""
    columns = f"SELECT {', '.join(LISTED)}, final_status FROM launches"
    with connect() as conn:
        if limit is None:
            return conn.execute(columns + " ORDER BY seq").fetchall()
        rows = conn.execute(columns + " ORDER BY seq DESC LIMIT ?", (limit,)).fetchall()
    rows.reverse()
    return rows


def latest(limit: int | None) -> list[JobRecord]:
    return [listed_record(row) for row in listing(limit)]


def remember_final(statuses: dict[str, dict[str, Any]]) -> None:
    """Keep the status of launches that ended (it cannot change), so that listing them again
    asks no backend. Best effort: a read-only index just asks again next time."""
    if not statuses:
        return
    try:
        with connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(
                "UPDATE launches SET final_status = ? WHERE launch_id = ?",
                [(json.dumps(status), launch_id) for launch_id, status in statuses.items()],
            )
            conn.execute("COMMIT")
    except LauncherError:
        pass


def find(ref: str) -> JobRecord | None:
    """The whole record of the newest launch whose launch id, job id or run name is `ref`."""
    query = (
        "SELECT record FROM launches WHERE launch_id = ?1 OR job_id = ?1 OR name = ?1 "
        "ORDER BY seq DESC LIMIT 1"
    )
    with connect() as conn:
        row = conn.execute(query, (ref,)).fetchone()
    return None if row is None else JobRecord.from_dict(json.loads(row[0]))


def newest_in(job_dir: str) -> JobRecord | None:
    """The whole record of the newest launch into a job folder."""
    query = "SELECT record FROM launches WHERE job_dir = ? ORDER BY seq DESC LIMIT 1"
    with connect() as conn:
        row = conn.execute(query, (job_dir,)).fetchone()
    return None if row is None else JobRecord.from_dict(json.loads(row[0]))


def resolve(ref: str) -> JobRecord:
    """A job by job folder, launch id, backend job id or run name (the newest launch). The
    job folder's job.json is read where it still exists, the index's copy where it does not."""
    folder = Path(ref).expanduser()
    if folder.is_dir():
        record = read_record(folder)
        if record is None:
            record = newest_in(str(folder.resolve())) or newest_in(str(folder))
        if record is None:
            raise UserError(
                f"{ref}: no {RECORD} in this folder; it was not launched by hyperpod-launcher "
                "(or the launch failed before writing its record)"
            )
        return record
    found = find(ref)
    if found is None:
        raise UserError(
            f"unknown job {ref!r}: not a job folder, run name, launch id or job id in the "
            f"index ({index_path()}); see `hyperpod-launch jobs`"
        )
    return read_record(found.job_dir, found.launch_id) or found


def full(record: JobRecord) -> JobRecord:
    """The whole record of a listed launch: its job.json, else its row of the index."""
    if record.complete:
        return record
    found = read_record(record.job_dir, record.launch_id)
    if found is not None:
        return found
    return (find(record.launch_id) if record.launch_id else None) or record
