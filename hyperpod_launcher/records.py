"""Job records: `job.json` in each job folder, and an index of launches for `jobs`.

The index is one JSON line per submitted launch in
`$HPL_STATE_DIR` (default `$XDG_STATE_HOME/hyperpod-launcher`, i.e.
`~/.local/state/hyperpod-launcher`)/`jobs.jsonl`. Lines are appended with O_APPEND, so
concurrent launches do not interleave. Dry runs are not indexed: there is nothing to follow.
Both hold the same `JobRecord`: job.json all of it, an index line its INDEX_KEYS.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hyperpod_launcher.errors import UserError

RECORD = "job.json"
ARCHIVE = "launches"
SCHEMA_VERSION = 1
INDEX_KEYS = ("launch_id", "name", "backend", "job_id", "job_dir", "submitted_at")


@dataclass(frozen=True)
class JobRecord:
    """One launch: what job.json holds (an index line holds only the INDEX_KEYS fields).

    `details` is the backend's own outcome of the submit (Slurm's sbatch output, the k8s
    release and namespace, the SageMaker region, ...). Keys this version does not know are
    kept in `extra` and written back unchanged."""

    name: str
    backend: str
    job_dir: str
    launch_id: str | None = None
    job_id: str | None = None
    submitted_at: str | None = None
    schema_version: int = SCHEMA_VERSION
    mode: str | None = None
    recipe: str | None = None
    launcher_version: str | None = None
    nodes: int | None = None
    procs_per_node: int | None = None
    instance_type: str | None = None
    image: str | None = None
    code: Mapping[str, Any] = field(default_factory=dict)
    overrides: tuple[str, ...] = ()
    recipe_sha256: str | None = None
    artifacts: tuple[str, ...] = ()
    submit_command: str | None = None
    submit_status: str | None = None  # submitted, succeeded, failed or dry_run
    resolved_commit: str | None = None
    error: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    cancelled_at: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        """Read from job.json (not an index line, which lacks the details)."""
        return self.submit_status is not None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JobRecord:
        """A record as written by any version (a line of the index, or job.json)."""
        names = {f.name for f in dataclasses.fields(cls)} - {"submit_command", "submit_status"}
        known = {k: v for k, v in data.items() if k in names and k != "extra" and v is not None}
        submit = data["submit"] if isinstance(data.get("submit"), Mapping) else {}
        for key in ("name", "backend", "job_dir"):
            if not isinstance(data.get(key), str):
                raise ValueError(f"a job record needs {key}")
        if known.get("job_id") is not None:
            known["job_id"] = str(known["job_id"])
        for key in ("overrides", "artifacts"):
            if key in known:
                known[key] = tuple(known[key])
        return cls(
            **known,
            submit_command=submit.get("command"),
            submit_status=submit.get("status"),
            extra={k: v for k, v in data.items() if k not in names and k != "submit"},
        )

    def to_dict(self) -> dict[str, Any]:
        """job.json's layout."""
        data: dict[str, Any] = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name not in ("submit_command", "submit_status", "extra")
        }
        data["code"] = dict(self.code)
        data["details"] = dict(self.details)
        data["overrides"] = list(self.overrides)
        data["artifacts"] = list(self.artifacts)
        data["submit"] = {"command": self.submit_command, "status": self.submit_status}
        for key in ("error", "cancelled_at"):
            if data[key] is None:
                del data[key]
        return {**self.extra, **data}

    def index_line(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in INDEX_KEYS}


def state_dir() -> Path:
    if os.environ.get("HPL_STATE_DIR"):
        return Path(os.environ["HPL_STATE_DIR"])
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(Path.home(), ".local", "state")
    return Path(base) / "hyperpod-launcher"


def index_path() -> Path:
    return state_dir() / "jobs.jsonl"


def append_to_index(record: JobRecord) -> None:
    path = index_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(record.index_line()) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def index_entries() -> list[JobRecord]:
    """Every indexed launch, oldest first (unreadable lines are skipped)."""
    try:
        text = index_path().read_text()
    except FileNotFoundError:
        return []
    entries = []
    for line in text.splitlines():
        try:
            entries.append(JobRecord.from_dict(json.loads(line)))
        except (json.JSONDecodeError, ValueError, TypeError, AttributeError):
            continue
    return entries


def read_record(job_dir: str | Path, launch_id: str | None = None) -> JobRecord | None:
    """The record of a launch: the folder's latest, or an earlier one kept under launches/."""
    folder = Path(job_dir)
    for path in (folder / RECORD, folder / ARCHIVE / str(launch_id) / RECORD):
        try:
            record = JobRecord.from_dict(json.loads(path.read_text()))
        except (OSError, json.JSONDecodeError, ValueError, TypeError, AttributeError):
            continue
        if launch_id is None or record.launch_id == launch_id:
            return record
    return None


def full(record: JobRecord) -> JobRecord:
    """The job.json record of an index line (the line itself if the folder has none)."""
    if record.complete:
        return record
    return read_record(record.job_dir, record.launch_id) or record


def resolve(ref: str) -> JobRecord:
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
        if ref in (entry.launch_id, entry.job_id, entry.name):
            record = read_record(entry.job_dir, entry.launch_id)
            if record is not None:
                return record
    raise UserError(
        f"unknown job {ref!r}: not a job folder, run name, launch id or job id in the index "
        f"({index_path()}); see `hyperpod-launch jobs`"
    )
