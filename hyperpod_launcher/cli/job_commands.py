"""Follow what you launched: `jobs`, `status`, `logs`, `cancel` (no Hydra, no unneeded SDK)."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys

from hyperpod_launcher.cli.table import format_table
from hyperpod_launcher.jobs import follow as lifecycle
from hyperpod_launcher.jobs import index as job_index
from hyperpod_launcher.jobs import records
from hyperpod_launcher.jobs.status import TERMINAL

JOB_REF = "run name, job folder, launch id or backend job id"


def jobs(args: argparse.Namespace) -> int:
    listed = job_index.listing(None if args.all else args.limit)
    if not listed:
        print(f"no launches yet (index: {job_index.index_path()})")
        return 0
    states = lifecycle.listed_statuses(listed)
    rows = [("NAME", "BACKEND", "JOB ID", "STATE", "PROGRESS", "SUBMITTED", "JOB FOLDER")]
    for row, state in zip(listed, states, strict=True):
        _, name, backend, job_id, job_dir, submitted_at, _, _ = row  # LISTED, final status
        running = state.state == "running"
        progress = progress_cell(job_index.listed_record(row)) if running else "-"
        rows.append(
            (name, backend, job_id or "-", state.short(), progress, submitted_at or "", job_dir)
        )
    print(format_table(rows))
    for warning in dict.fromkeys(state.warning for state in states if state.warning):
        print(f"warning: {warning}", file=sys.stderr)
    return 0


def progress_cell(entry: records.JobRecord) -> str:
    """The `jobs` column of a running job: the step reached, from the tail of the job folder's
    metrics file (`-` on backends without one, so that `jobs` asks no API for it)."""
    from hyperpod_launcher.telemetry import progress

    if not progress.in_job_folder(entry.backend) or not entry.launch_id:
        return "-"
    return progress.steps_text(progress.last_step(entry))


def status(args: argparse.Namespace) -> int:
    from hyperpod_launcher.telemetry import progress

    record = lifecycle.recover(job_index.resolve(args.job))
    (state,) = lifecycle.statuses([record], detailed=True)
    # Off the job folder, the figures come from the job's logs: none while it is pending.
    asked = progress.in_job_folder(record.backend) or state.state in ("running", *TERMINAL)
    figures = progress.figures_of(record, finished=state.finished, found=None if asked else [])
    causes = progress.causes(figures, state.exit_code) if state.state != "succeeded" else []
    if args.json:
        print(
            json.dumps(
                {
                    **state.as_dict(),
                    "name": record.name,
                    "job_id": record.job_id,
                    "backend": record.backend,
                    "job_dir": record.job_dir,
                    "progress": figures.as_dict(),
                    "causes": causes,
                }
            )
        )
    else:
        print(f"{record.name} ({record.backend} job {record.job_id}): {state.describe()}")
        if figures.step is not None:
            print(f"  progress: {progress.line(figures)}")
            if state.finished:
                print(f"  {progress.summary(figures)}")
        for cause in causes:
            print(f"  {cause}")
    return 0


def logs(args: argparse.Namespace) -> int:
    record = lifecycle.recover(job_index.resolve(args.job))
    impl = lifecycle.implementation(record.backend, "logs")
    for line in impl.logs(record, follow=args.follow, rank=args.rank):
        lifecycle.print_log_line(line, flush=args.follow)
    return 0


def cancel(args: argparse.Namespace) -> int:
    record = lifecycle.recover(job_index.resolve(args.job))
    print(lifecycle.implementation(record.backend, "cancel").cancel(record))
    return 0


def positive_int(text: str) -> int:
    """argparse's type for a count (config.rules.Count): a usage error (exit 2) otherwise."""
    from hyperpod_launcher.config.rules import Count
    from hyperpod_launcher.config.validate import problem

    value: object = text
    with contextlib.suppress(ValueError):
        value = int(text)
    wrong = problem(value, Count)
    if wrong:
        raise argparse.ArgumentTypeError(wrong)
    return int(text)


def add_jobs(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--limit", type=positive_int, default=20, help="how many, newest last (default 20)"
    )
    parser.add_argument("--all", action="store_true", help="every launch in the index")
    parser.set_defaults(run=jobs)


def add_status(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("job", help=JOB_REF)
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(run=status)


def add_logs(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("job", help=JOB_REF)
    parser.add_argument("-f", "--follow", action="store_true", help="keep printing until it ends")
    parser.add_argument("--rank", type=int, help="only the lines of this global rank")
    parser.set_defaults(run=logs)


def add_cancel(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("job", help=JOB_REF)
    parser.set_defaults(run=cancel)
