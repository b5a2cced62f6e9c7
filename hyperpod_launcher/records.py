"""Job records: `job.json` in each job folder, and an index of launches for `jobs`.

The index is one JSON line per submitted launch in
`$HPL_STATE_DIR` (default `$XDG_STATE_HOME/hyperpod-launcher`, i.e.
`~/.local/state/hyperpod-launcher`)/`jobs.jsonl`. Lines are appended with O_APPEND, so
concurrent launches do not interleave. Dry runs are not indexed: there is nothing to follow.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hyperpod_launcher.errors import UserError

RECORD = "job.json"
ARCHIVE = "launches"
INDEX_KEYS = ("launch_id", "name", "backend", "job_id", "job_dir", "submitted_at")


def state_dir() -> Path:
    if os.environ.get("HPL_STATE_DIR"):
        return Path(os.environ["HPL_STATE_DIR"])
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(Path.home(), ".local", "state")
    return Path(base) / "hyperpod-launcher"


def index_path() -> Path:
    return state_dir() / "jobs.jsonl"


def append_to_index(record: Mapping[str, Any]) -> None:
    path = index_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps({key: record.get(key) for key in INDEX_KEYS}) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def index_entries() -> list[dict[str, Any]]:
    """Every indexed launch, oldest first (unreadable lines are skipped)."""
    try:
        text = index_path().read_text()
    except FileNotFoundError:
        return []
    entries = []
    for line in text.splitlines():
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return entries


def read_record(job_dir: str | Path, launch_id: str | None = None) -> dict[str, Any] | None:
    """The record of a launch: the folder's latest, or an earlier one kept under launches/."""
    folder = Path(job_dir)
    for path in (folder / RECORD, folder / ARCHIVE / str(launch_id) / RECORD):
        try:
            record = json.loads(path.read_text())
        except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError):
            continue
        if launch_id is None or record.get("launch_id") == launch_id:
            return record
    return None


def resolve(ref: str) -> dict[str, Any]:
    """A job by job folder, launch id, backend job id or run name (the latest launch)."""
    folder = Path(ref).expanduser()
    if folder.is_dir():
        record = read_record(folder)
        if record is None:
            raise UserError(
                f"{ref}: no {RECORD} in this folder; it was not launched by hyperpod-launcher "
                "(or the launch failed before writing its record)"
            )
        return record
    for entry in reversed(index_entries()):
        if ref in (entry.get("launch_id"), entry.get("job_id"), entry.get("name")):
            record = read_record(entry["job_dir"], entry.get("launch_id"))
            if record is not None:
                return record
    raise UserError(
        f"unknown job {ref!r}: not a job folder, run name, launch id or job id in the index "
        f"({index_path()}); see `hyperpod-launch jobs`"
    )
