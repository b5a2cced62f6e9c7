"""Follow what you launched: `jobs`, `status`, `logs`, `cancel` (no Hydra, no unneeded SDK)."""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from typing import Any

from hyperpod_launcher import records
from hyperpod_launcher import status as st
from hyperpod_launcher.errors import LauncherError, UserError

COMMANDS = ("jobs", "status", "logs", "cancel")


# Backends whose job commands live apart from their renderer (they need an SDK, not Jinja).
FOLLOWERS = {
    "sm_jobs": "hyperpod_launcher.backends.sagemaker_jobs:SageMakerJobs",
    "k8s": "hyperpod_launcher.backends.k8s_jobs:K8sJobs",
}


def _lifecycle(backend: str, verb: str) -> Any:
    from hyperpod_launcher import backends, lazy

    impl = lazy.load(FOLLOWERS[backend])() if backend in FOLLOWERS else backends.get(backend)
    if not hasattr(impl, verb):
        raise UserError(f"`{verb}` is not supported for {backend} jobs yet")
    return impl


def statuses(entries: list[dict[str, Any]], detailed: bool = False) -> list[st.JobStatus]:
    """One status query per backend for many jobs."""
    by_backend: dict[str, list[int]] = defaultdict(list)
    result: list[st.JobStatus] = [st.JobStatus(st.UNKNOWN, "?")] * len(entries)
    for i, entry in enumerate(entries):
        if entry.get("job_id") is None:  # the submit failed: there is nothing to ask
            result[i] = st.JobStatus(st.FAILED, "not submitted", detail="see its job.json")
        else:
            by_backend[entry["backend"]].append(i)
    for backend, indexes in by_backend.items():
        try:
            found = _lifecycle(backend, "status").status(
                [entries[i] for i in indexes], detailed=detailed
            )
        except LauncherError as err:
            if detailed:
                raise
            print(f"warning: {err}", file=sys.stderr)
            continue
        for i, state in zip(indexes, found, strict=True):
            result[i] = state
    return result


def follow(record: dict[str, Any], rank: int | None = None) -> st.JobStatus:
    """Stream the job's logs until it ends; return its final status."""
    impl = _lifecycle(record["backend"], "logs")
    impl.logs(record, follow=True, rank=rank)
    return impl.status([record], detailed=True)[0]


def cmd_jobs(args: argparse.Namespace) -> int:
    entries = records.index_entries()
    entries = entries if args.all else entries[-args.limit :]
    if not entries:
        print(f"no launches yet (index: {records.index_path()})")
        return 0
    states = statuses(entries)
    rows = [("NAME", "BACKEND", "JOB ID", "STATE", "SUBMITTED", "JOB FOLDER")]
    for entry, state in zip(entries, states, strict=True):
        rows.append(
            (
                entry.get("name") or "",
                entry.get("backend") or "",
                str(entry.get("job_id") or ""),
                f"{state.state} ({state.backend_state})",
                entry.get("submitted_at") or "",
                entry.get("job_dir") or "",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)) + row[-1])
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    record = records.resolve(args.job)
    (state,) = statuses([record], detailed=True)
    if args.json:
        print(
            json.dumps(
                {
                    **state.__dict__,
                    "name": record["name"],
                    "job_id": record["job_id"],
                    "backend": record["backend"],
                    "job_dir": record["job_dir"],
                }
            )
        )
    else:
        print(f"{record['name']} ({record['backend']} job {record['job_id']}): {state.describe()}")
    return 0


def cmd_logs(args: argparse.Namespace) -> int:
    record = records.resolve(args.job)
    _lifecycle(record["backend"], "logs").logs(record, follow=args.follow, rank=args.rank)
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    record = records.resolve(args.job)
    print(_lifecycle(record["backend"], "cancel").cancel(record))
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="hyperpod-launch", description=__doc__)
    sub = top.add_subparsers(dest="command", required=True)
    jobs = sub.add_parser("jobs", help="recent launches with their current state")
    jobs.add_argument("--limit", type=int, default=20, help="how many (default 20)")
    jobs.add_argument("--all", action="store_true", help="every launch in the index")
    jobs.set_defaults(run=cmd_jobs)
    ref = "run name, job folder, launch id or backend job id"
    status = sub.add_parser("status", help="a job's state")
    status.add_argument("job", help=ref)
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(run=cmd_status)
    logs = sub.add_parser("logs", help="a job's output")
    logs.add_argument("job", help=ref)
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing until it ends")
    logs.add_argument("--rank", type=int, help="only the lines of this global rank")
    logs.set_defaults(run=cmd_logs)
    cancel = sub.add_parser("cancel", help="stop a job (a finished job is left as it is)")
    cancel.add_argument("job", help=ref)
    cancel.set_defaults(run=cmd_cancel)
    return top


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except LauncherError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
