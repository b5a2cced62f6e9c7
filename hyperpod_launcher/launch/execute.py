"""One launch: resolved config -> JobSpec -> rendered artifacts -> job folder -> submit."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import errno
import os
import secrets as _random
import shlex
import shutil
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hyperpod_launcher import __version__, backends
from hyperpod_launcher.backends.base import Backend, Request, Submitted
from hyperpod_launcher.jobs import index as job_index
from hyperpod_launcher.jobs import records
from hyperpod_launcher.launch import signals as launch_signals
from hyperpod_launcher.prepare.jobdir import RECORD, JobDir, locked
from hyperpod_launcher.spec import job
from hyperpod_launcher.spec.build import build, launch_options
from hyperpod_launcher.util.errors import BackendError, LauncherError, UserError

LAUNCHER_CMD_LOG = "launcher_cmd.log"


def new_launch_id() -> str:
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    return f"{now}-{_random.token_hex(2)}"


@dataclass(frozen=True, repr=False)
class Plan:
    """Everything a launch will write and submit, computed without side effects."""

    spec: job.JobSpec
    launch: job.LaunchOptions  # how this launch runs (dry run, wait, ...)
    secrets: job.Secrets
    backend: Backend
    request: Request
    resolved_commit: str | None = None  # what the submit host's checkout pinned

    def __repr__(self) -> str:
        return self.secrets.mask(
            f"Plan(spec={self.spec!r}, secrets={self.secrets!r}, "
            f"backend={self.spec.backend!r}, request={self.request!r})"
        )

    def __str__(self) -> str:
        return self.secrets.mask(str(self.request))

    @property
    def files(self) -> dict[str, tuple[str, int]]:
        files = {path: (f.text, f.mode) for path, f in self.request.files.items()}
        if self.spec.recipe_file and self.spec.recipe_yaml is not None:
            files[self.spec.recipe_file] = (self.spec.recipe_yaml, 0o644)
        for name, text in self.spec.config_files:
            files[name] = (text, 0o644)
        return files

    @property
    def submit_only_files(self) -> bool:
        return self.launch.dry_run or self.backend.writes_only(self.spec)


def make_plan(
    cfg: dict[str, Any],
    *,
    cluster_choice: str | None,
    recipe_choice: str | None,
    launch_id: str,
    overrides: tuple[str, ...] = (),
) -> Plan:
    spec, secrets = build(
        cfg,
        cluster_choice=cluster_choice,
        recipe_choice=recipe_choice,
        launch_id=launch_id,
        overrides=overrides,
    )
    launch = launch_options(cfg, overrides, spec, secrets)
    backend = backends.get(spec.backend)
    backend.validate(spec)
    return Plan(spec, launch, secrets, backend, backend.render(spec, launch))


def _launcher_cmd_log(plan: Plan, argv: list[str]) -> str:
    lines = [
        f"# hyperpod-launcher {__version__}, launch {plan.spec.launch_id}",
        f"cd {shlex.quote(os.getcwd())}",
        shlex.join([sys.executable, *argv]),  # argv[0] is the script (main.py)
        f"# submit: {plan.request.submit_command}",
    ]
    return plan.secrets.mask("\n".join(lines) + "\n")


def _record(plan: Plan, artifacts: list[str], status: str, **outcome: Any) -> records.JobRecord:
    spec = plan.spec
    return records.JobRecord(
        name=spec.name,
        launch_id=spec.launch_id,
        backend=spec.backend,
        mode=spec.mode,
        recipe=spec.recipe,
        job_dir=spec.job_dir,
        launcher_version=__version__,
        submitted_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        nodes=spec.nodes,
        procs_per_node=spec.procs_per_node,
        instance_type=spec.instance_type,
        image=spec.image,
        code={
            "location": plan.secrets.mask(spec.code.location or "") or None,
            "branch": spec.code.branch,
            "commit": spec.code.commit,
            "checkout_dir": spec.code.checkout_dir,
        },
        overrides=plan.launch.overrides,
        recipe_sha256=spec.recipe_sha256,
        artifacts=tuple(artifacts),
        submit_command=plan.request.submit_command,
        submit_status=status,
        resolved_commit=plan.resolved_commit,
        **outcome,
    )


def _review_only_note(plan: Plan) -> str | None:
    """Backends whose job runs the submit host's checkout say so: a dry run makes none."""
    hint = plan.backend.checkout_hint
    if hint is None or not plan.spec.code.checkout_dir:
        return None
    note = (
        "dry run: these scripts are for review; the code is not checked out into "
        f"{plan.spec.code.checkout_dir}, so submitting them needs that checkout"
    )
    return f"{note} ({hint})" if hint else note


def _checkout(plan: Plan, jobdir: JobDir, command_log: str) -> Plan:
    """Check the code out on the submit host and render the request again with the commit it
    pinned, so every node runs that commit and the request shows it. A failure is recorded
    in job.json (with the files written, for review) and raised."""
    from hyperpod_launcher.prepare import checkout as code

    try:
        commit = code.checkout(plan.spec.code, plan.secrets)
    except LauncherError as err:
        files = {**plan.files, LAUNCHER_CMD_LOG: (command_log, 0o644)}
        record = _record(plan, [*jobdir.write_all(files), RECORD], "failed", error=str(err))
        _keep_record(jobdir, record)
        raise
    if commit is None or commit == plan.spec.code.commit:
        return dataclasses.replace(plan, resolved_commit=commit)
    spec = dataclasses.replace(plan.spec, code=dataclasses.replace(plan.spec.code, commit=commit))
    request = plan.backend.render(spec, plan.launch)
    return dataclasses.replace(plan, spec=spec, request=request, resolved_commit=commit)


def summary_line(plan: Plan) -> str:
    """The backend's summary with why the backend and instance type were chosen."""
    head, sep, rest = plan.request.summary.partition("\n")
    if plan.spec.origins:
        head += f" ({'; '.join(plan.spec.origins)})"
    return head + sep + rest


def _refuse_while_active(spec: job.JobSpec) -> None:
    """A relaunch of a name whose newest launch is still pending or running is refused
    (both jobs would train into the same checkpoints), unless the user allows it."""
    from hyperpod_launcher.jobs import follow as lifecycle

    earlier = job_index.newest_in(spec.job_dir)
    if earlier is None:
        return
    (state,) = lifecycle.statuses([earlier])
    if state.state not in ("pending", "running"):
        return  # finished (or unknown): this launch is a new attempt of the run
    key = "training_cfg.run.name" if spec.mode == "custom" else "recipes.run.name"
    job_ref = f"{earlier.backend} job {earlier.job_id}" if earlier.job_id else earlier.backend
    raise UserError(
        f"{key}={spec.name}: its launch {earlier.launch_id} ({job_ref}) is still "
        f"{state.state}; cancel it (hyperpod-launch cancel {earlier.launch_id}), choose "
        "another run name, or set allow_concurrent=true to launch beside it"
    )


UNWRITABLE = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM)


@contextlib.contextmanager
def _writable(spec: job.JobSpec) -> Iterator[None]:
    """A results folder that cannot be written (full, read-only) is one line before anything
    is queued, and leaves no folder this launch created."""
    job_dir = spec.job_dir
    created = [p for p in (Path(job_dir), *Path(job_dir).parents) if not p.exists()]
    try:
        yield
    except OSError as err:
        if err.errno not in UNWRITABLE:
            raise
        # The outermost folder this launch created, else the launch's own folder.
        shutil.rmtree(created[-1] if created else spec.launch_dir, ignore_errors=True)
        raise UserError(
            f"base_results_dir: cannot write the job folder {job_dir} "
            f"({err.strerror or err}); free space there or choose another base_results_dir"
        ) from None


def _keep_record(jobdir: JobDir, record: records.JobRecord) -> None:
    jobdir.write_record(record)
    job_index.put(record)


def execute(
    plan: Plan,
    argv: list[str],
    say: Callable[[str], None] = print,
    defaults: Sequence[str] = (),
) -> int:
    """Check out the code (unless a dry run), write the launch's folder, record the launch,
    then submit the request that was written and record the outcome. `argv` is the launcher's
    whole command line (for launcher_cmd.log); `defaults` the `key=value` required values the
    backend filled in (required.apply_defaults). Stop signals are held from the first write to
    the record of the outcome (launch_signals)."""
    with launch_signals.held() as stop:
        returncode, record = _launch(plan, argv, say, defaults, stop)
    if stop.signum and record is not None and record.submit_status != "failed":
        job_ref = f"{record.backend} job {record.job_id}" if record.job_id else "the job"
        raise launch_signals.Stopped(
            f"stopped by {stop.name()}; {job_ref} ({record.name}) keeps running and is on "
            f"record: hyperpod-launch status {record.launch_id}",
            stop.signum,
        )
    return returncode


def _launch(
    plan: Plan,
    argv: list[str],
    say: Callable[[str], None],
    defaults: Sequence[str],
    stop: launch_signals.Held,
) -> tuple[int, records.JobRecord | None]:
    spec = plan.spec
    command_log = _launcher_cmd_log(plan, argv)
    with _writable(spec), locked(spec.job_dir):  # one launch writes at a time
        if not plan.submit_only_files and not plan.launch.allow_concurrent:
            _refuse_while_active(spec)
        jobdir = JobDir(spec.job_dir, spec.launch_id)
        # A dry run fetches nothing (no network): its scripts are for review.
        if not plan.launch.dry_run:
            plan = _checkout(plan, jobdir, command_log)
            spec = plan.spec
        files = {**plan.files, LAUNCHER_CMD_LOG: (command_log, 0o644)}
        artifacts = [*jobdir.write_all(files), RECORD]
        say(plan.secrets.mask(f"{summary_line(plan)}; job folder {spec.job_dir}"))
        if defaults:
            say(f"cluster={spec.backend} defaults: {', '.join(defaults)}")
        for line in spec.warnings:
            say(f"warning: {line}")

        if plan.submit_only_files:
            # A backend may add what only a dry run shows (k8s: the manifests helm renders).
            extra = plan.backend.dry_run(spec, plan.request, jobdir, say)
            artifacts = [*sorted({*artifacts, *extra} - {RECORD}), RECORD]
            jobdir.write_record(_record(plan, artifacts, "dry_run"))
            say(f"dry run: wrote {', '.join(artifacts)}")
            note = _review_only_note(plan) if plan.launch.dry_run else None
            if note:
                say(note)
            for line in spec.missing:
                say(f"warning: {line}; a launch without dry_run refuses this")
            say(str(plan))
            return 0, None
        # On record before the job can start: a crash from here on leaves it findable.
        pending = _record(plan, artifacts, "submitting", details={"launcher_pid": os.getpid()})
        _keep_record(jobdir, pending)

    if stop.signum:
        record = _record(plan, artifacts, "failed", error=f"stopped by {stop.name()}")
        _keep_record(jobdir, record)
        raise launch_signals.Stopped(f"stopped by {stop.name()} before submitting", stop.signum)
    try:
        if plan.request.runs_in_foreground:  # a stop signal stops the job, as Ctrl-C does
            with launch_signals.interrupting():
                submitted: Submitted = plan.backend.submit(plan.request, plan.secrets)
        else:
            submitted = plan.backend.submit(plan.request, plan.secrets)
    except Exception as err:
        # The backend's own error may quote what it was given: mask it before anyone sees it.
        message = plan.secrets.mask(str(err))
        _keep_record(jobdir, _record(plan, artifacts, "failed", error=message))
        if isinstance(err, LauncherError):
            raise type(err)(message) from None
        trace = "".join(traceback.format_exception(err))
        print(plan.secrets.mask(trace), file=sys.stderr, end="")
        raise BackendError(f"submit failed: {type(err).__name__}: {message}") from None
    finished = "exit_code" in submitted.details
    status = ("succeeded" if submitted.returncode == 0 else "failed") if finished else "submitted"
    record = _record(plan, artifacts, status, job_id=submitted.job_id, details=submitted.details)
    try:
        _keep_record(jobdir, record)
    except (OSError, LauncherError) as err:  # the job is queued: say so, never submit twice
        print(
            f"warning: {spec.backend} job {submitted.job_id} ({spec.name}) was submitted, but "
            f"its record could not be written ({err}); do not submit it again",
            file=sys.stderr,
        )
    if finished:
        outcome = (
            "succeeded"
            if submitted.returncode == 0
            else (f"failed with exit status {submitted.returncode}")
        )
        say(f"job {spec.name} {outcome}; log: {submitted.details.get('log')}")
        from hyperpod_launcher.telemetry.live import ProgressLine

        ProgressLine(record).summary()
        return submitted.returncode, record
    say(f"submitted {spec.backend} job {submitted.job_id} ({spec.name})")
    if plan.launch.wait and not stop.signum:
        from hyperpod_launcher.jobs.follow import follow

        with launch_signals.interrupting():
            final = follow(record)
        say(f"job {spec.name} ({spec.backend} job {submitted.job_id}): {final.describe()}")
        return (0 if final.state == "succeeded" else 1), record
    return 0, record
