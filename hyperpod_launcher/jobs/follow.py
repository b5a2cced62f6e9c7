"""Following launched jobs, for every backend: batched states and following one to its end."""

from __future__ import annotations

import contextlib
import os
import sys
from collections import defaultdict
from dataclasses import replace
from typing import Any

from hyperpod_launcher.jobs import index as job_index
from hyperpod_launcher.jobs import status as st
from hyperpod_launcher.jobs.logfiles import Note
from hyperpod_launcher.jobs.records import JobRecord
from hyperpod_launcher.util.errors import LauncherError, UserError


def implementation(backend: str, verb: str) -> Any:
    """The backend that answers `verb` (status, logs, cancel) for its jobs."""
    from hyperpod_launcher import backends

    impl = backends.get(backend)
    if verb not in impl.capabilities:
        raise UserError(f"`{verb}` is not supported for {backend} jobs")
    return impl


def statuses(entries: list[JobRecord], detailed: bool = False) -> list[st.JobStatus]:
    """One status query per backend for many jobs. Without `detailed`, a backend that cannot
    be asked is reported as one warning and its jobs as unknown."""
    by_backend: dict[str, list[int]] = defaultdict(list)
    result: list[st.JobStatus] = [st.JobStatus(st.UNKNOWN, "?")] * len(entries)
    from hyperpod_launcher import backends

    for i, entry in enumerate(entries):
        submitting_here = entry.submit_status == "submitting" and backends.runs_here(entry.backend)
        if entry.job_id is not None or submitting_here:  # a local job is found by launch id
            by_backend[entry.backend].append(i)
        elif entry.submit_status == "submitting":
            found = recover(entry)
            if found.job_id is None:
                result[i] = submitting(job_index.full(entry))
            else:
                entries[i] = found
                by_backend[entry.backend].append(i)
        else:  # the submit failed: there is nothing to ask
            result[i] = st.JobStatus(st.FAILED, "not submitted", detail="see its job.json")
    for backend, indexes in by_backend.items():
        try:
            found = implementation(backend, "status").status(
                [entries[i] for i in indexes], detailed=detailed
            )
        except LauncherError as err:
            if detailed:
                raise
            for i in indexes:
                result[i] = st.JobStatus(st.UNKNOWN, "?", warning=str(err))
            continue
        for i, state in zip(indexes, found, strict=True):
            result[i] = state
    return result


def listed_statuses(listed: list[job_index.ListedRow]) -> list[st.JobStatus]:
    """The states of listed launches: those known to have ended as remembered (each distinct
    remembered status read once), the others asked (and remembered once they ended)."""
    import json

    result: list[st.JobStatus | None] = []
    remembered: dict[str, st.JobStatus] = {}
    ask = []
    for i, row in enumerate(listed):
        final = row[-1]
        if final is None:
            ask.append(i)
            result.append(None)
            continue
        state = remembered.get(final)
        if state is None:
            state = remembered[final] = st.JobStatus.from_dict(json.loads(final))
        result.append(state)
    entries = [job_index.listed_record(listed[i]) for i in ask]
    asked = statuses(entries)
    ended = {}
    for i, entry, state in zip(ask, entries, asked, strict=True):
        result[i] = state
        if state.finished and entry.launch_id and entry.submit_status != "submitting":
            ended[entry.launch_id] = state.as_dict()
    job_index.remember_final(ended)
    return [state or st.JobStatus(st.UNKNOWN, "?") for state in result]


def _launcher_alive(record: JobRecord) -> bool:
    pid = job_index.full(record).details.get("launcher_pid")
    return isinstance(pid, int) and os.path.exists(f"/proc/{pid}")


def recover(record: JobRecord) -> JobRecord:
    """A launch whose launcher ended while submitting, with the job id its backend finds
    for it (recorded now), or as it was."""
    if record.job_id is not None or record.submit_status != "submitting":
        return record
    from hyperpod_launcher import backends
    from hyperpod_launcher.jobs import index as job_index

    find = getattr(backends.get(record.backend), "find_submitted", None)
    if find is None or _launcher_alive(record):
        return record
    job_id = find(record)
    if job_id is None:
        return record
    found = replace(job_index.full(record), job_id=job_id, submit_status="submitted")
    from hyperpod_launcher.prepare.jobdir import JobDir

    if os.path.isdir(found.job_dir):  # a deleted job folder: the index is the record
        with contextlib.suppress(OSError):
            JobDir(found.job_dir, str(found.launch_id)).write_record(found)
    with contextlib.suppress(LauncherError):  # else it is found again the next time
        job_index.put(found)
    return found


def submitting(entry: JobRecord) -> st.JobStatus:
    """A launch recorded before its submit, which has not recorded the outcome (yet)."""
    if _launcher_alive(entry):
        pid = entry.details.get("launcher_pid")
        return st.JobStatus(st.PENDING, "submitting", detail=f"launcher process {pid} submits it")
    return st.JobStatus(
        st.UNKNOWN,
        "submit interrupted",
        detail="the launcher ended while submitting: the job may be queued under its name; "
        "look for it with the cluster's own tools",
    )


def print_log_line(line: str, flush: bool) -> None:
    """A job's own output on stdout; a backend's note about it (`Note`) on stderr."""
    print(line, file=sys.stderr if isinstance(line, Note) else sys.stdout, flush=flush)


def follow(record: JobRecord, rank: int | None = None) -> st.JobStatus:
    """Stream the job's logs until it ends, with a progress line; return its final status."""
    from hyperpod_launcher.telemetry.live import ProgressLine

    impl = implementation(record.backend, "logs")
    live = ProgressLine(record)
    for line in impl.logs(record, follow=True, rank=rank):
        live.clear()
        print_log_line(line, flush=True)
        live.seen(line)
    live.clear()
    final = impl.status([record], detailed=True)[0]
    live.summary()
    return final
