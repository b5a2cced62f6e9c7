"""Job records: `job.json` in each job folder (and in each launch's own folder).

The same `JobRecord` is a row of the job index (job_index.py), which lists launches for
`jobs` and finds one by reference. Dry runs are not indexed: there is nothing to follow.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RECORD = "job.json"
ARCHIVE = "launches"
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class JobRecord:
    """One launch: what job.json holds (a listing of the index only the fields it shows).

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
        """Read whole (not a listing of the index, which lacks the details)."""
        return self.submit_command is not None

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


def state_dir() -> Path:
    if os.environ.get("HPL_STATE_DIR"):
        return Path(os.environ["HPL_STATE_DIR"])
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(Path.home(), ".local", "state")
    return Path(base) / "hyperpod-launcher"


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
