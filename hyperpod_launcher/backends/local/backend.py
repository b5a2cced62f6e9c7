"""Local: run the per-node script on this machine with torchrun (CPU/gloo without a GPU)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from hyperpod_launcher import __version__
from hyperpod_launcher.backends.base import (
    TRAIN_SCRIPT,
    Backend,
    RenderedFile,
    Request,
    Submitted,
    train_script,
)
from hyperpod_launcher.jobs import status as st
from hyperpod_launcher.jobs.records import JobRecord
from hyperpod_launcher.spec.job import JobSpec, LaunchOptions, Secrets
from hyperpod_launcher.util import masking, templating
from hyperpod_launcher.util.errors import BackendError, UserError

RUN_SCRIPT = "local_run.sh"
# torchrun's --log-dir in the launch folder (set by the per-node script): per-rank copies of
# the job's output, written by torchrun itself, so they are masked once the job has ended.
TORCHRUN_LOGS = "torchrun"


@dataclass(frozen=True, kw_only=True)
class LocalRequest(Request):
    log: str  # the job's output, also streamed to the terminal unless detached
    torchrun_logs: str  # torchrun's per-rank copies of that output
    detach: bool

    def also_sends(self) -> list[str]:
        how = "in the background" if self.detach else "in the foreground"
        return [f"runs {how}; output: {self.log}"]

    @property
    def runs_in_foreground(self) -> bool:
        return not self.detach


def log_name(spec: JobSpec) -> str:
    return f"log-{spec.name}_{spec.launch_id}.out"


def exit_file(job_dir: str, launch_id: str) -> Path:
    return Path(job_dir) / f"local-{launch_id}.exit"


def pid_file(job_dir: str, launch_id: str) -> Path:
    return Path(job_dir) / f"local-{launch_id}.pid"


def _alive(pid: int, job_dir: str) -> bool:
    """The launch's process is still running (and the pid was not reused by another)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return job_dir.encode() in cmdline and stat.rsplit(")", 1)[-1].split()[0] != "Z"


def process_group(record: JobRecord) -> int | None:
    """The job's process group: its run script's pid (it leads its own session), from the
    record or, when the launcher ended before recording it, from the file the script wrote."""
    if record.job_id and str(record.job_id).isdigit():
        return int(str(record.job_id))
    try:
        text = pid_file(record.job_dir, str(record.launch_id)).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def survivors(pgid: int) -> list[int]:
    """Live processes of a process group (not zombies)."""
    try:
        os.killpg(pgid, 0)  # cheap: most groups asked about are long gone
    except ProcessLookupError:
        return []
    except PermissionError:
        pass  # another user's group exists
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[-1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            found.append(int(entry.name))
    return found


def local_status(record: JobRecord) -> st.JobStatus:
    try:
        word = exit_file(record.job_dir, str(record.launch_id)).read_text().strip()
    except FileNotFoundError:
        word = ""
    if word == "cancelled":
        return st.JobStatus(st.CANCELLED, "cancelled")
    if word.lstrip("-").isdigit():
        code = int(word)
        status = st.JobStatus(st.SUCCEEDED if code == 0 else st.FAILED, "exited", code)
        return status.with_cause([Path(record.details.get("log") or "/dev/null")])
    pgid = process_group(record)
    if pgid is not None and _alive(pgid, record.job_dir):
        return st.JobStatus(st.RUNNING, "running")
    left = survivors(pgid) if pgid is not None else []
    if left:
        return st.JobStatus(
            st.RUNNING,
            "runner gone",
            detail=f"{len(left)} process(es) of group {pgid} still run; `cancel` stops them",
        )
    if pgid is None and record.submit_status == "submitting":
        return st.JobStatus(
            st.FAILED, "not started", detail="the launcher ended before the job started"
        )
    return st.JobStatus(st.FAILED, "gone", detail="the process ended without an exit status")


class LocalBackend(Backend[LocalRequest]):
    metrics_in_job_folder = True
    checkout_hint = ""  # the job runs the launcher's checkout, which a dry run does not make
    preflight_checks = "hyperpod_launcher.backends.local.preflight"  # what `preflight` asks

    def validate(self, spec: JobSpec) -> None:
        if spec.nodes != 1:
            key = "training_cfg.run.nodes" if spec.mode == "custom" else "recipes.trainer.num_nodes"
            raise UserError(f"{key}={spec.nodes}: cluster=local runs on this one machine; set 1")
        if spec.image:
            raise UserError(
                f"container={spec.image}: cluster=local runs without a container; "
                "set container=null"
            )

    def render(self, spec: JobSpec, launch: LaunchOptions) -> LocalRequest:
        text = templating.render(
            "local/run.sh.j2",
            spec=spec,
            version=__version__,
            train_script=os.path.join(spec.launch_dir, TRAIN_SCRIPT),
            exit_file=str(exit_file(spec.job_dir, spec.launch_id)),
            pid_file=str(pid_file(spec.job_dir, spec.launch_id)),
        )
        files = {RUN_SCRIPT: RenderedFile(text, 0o755), TRAIN_SCRIPT: train_script(spec)}
        argv = ("bash", os.path.join(spec.launch_dir, RUN_SCRIPT))
        summary = f"local job {spec.name}: {spec.procs_per_node} process(es) on this machine"
        return LocalRequest(
            files,
            argv,
            summary,
            log=os.path.join(spec.job_dir, log_name(spec)),
            torchrun_logs=os.path.join(spec.launch_dir, TORCHRUN_LOGS),
            detach=bool(spec.opts.detach) or launch.wait is False,
        )

    def submit(self, request: LocalRequest, secrets: Secrets) -> Submitted:
        log_path = request.log
        env = {**os.environ, **secrets.env}
        # The launch's own secrets and those the launcher knows of (this environment's, the
        # command line's): the job inherits this environment and may print any of them.
        values = [*secrets.values(), *masking.known()]
        if request.detach:
            from hyperpod_launcher.util import log_mask

            with open(log_path, "ab") as log:
                # masks the job's output, then torchrun's copies of it once the job has ended
                relay = log_mask.start(log, values, then_mask=request.torchrun_logs)
                assert relay.stdin is not None  # started with stdin=PIPE
                proc = subprocess.Popen(
                    request.submit_argv,
                    env=env,
                    stdout=relay.stdin,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
                relay.stdin.close()
            return Submitted(job_id=str(proc.pid), details={"log": log_path, "detached": True})
        return _run_foreground(request, env, values)

    def status(self, records: list[JobRecord], detailed: bool = False) -> list[st.JobStatus]:
        return [local_status(r) for r in records]

    def logs(self, record: JobRecord, follow: bool, rank: int | None) -> Iterator[str]:
        from hyperpod_launcher.jobs import logfiles

        log = Path(record.details.get("log") or "")
        return logfiles.lines(
            lambda: [log], lambda: local_status(record).finished, follow=follow, rank=rank
        )

    def cancel(self, record: JobRecord) -> str:
        current = local_status(record)
        pgid = process_group(record)
        if current.finished or pgid is None:
            return f"local job {record.job_id or pgid} already finished: {current.describe()}"
        # The job runs in its own session (pgid == its run script's pid); every process of
        # the group goes, also when the run script itself is already gone.
        _signal_group(pgid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while survivors(pgid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if survivors(pgid):
            _signal_group(pgid, signal.SIGKILL)
        if not os.path.isdir(record.job_dir):
            return f"cancelled local job {pgid} (its job folder {record.job_dir} is gone)"
        exit_file(record.job_dir, str(record.launch_id)).write_text("cancelled\n")
        return f"cancelled local job {pgid}"


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # the group ended meanwhile
        os.killpg(pgid, signum)


def _run_foreground(request: LocalRequest, env: dict[str, str], values: list[str]) -> Submitted:
    """Run the job, streaming its output (secret `values` masked) to the terminal and the log,
    then mask torchrun's copies of it; return its status."""
    from hyperpod_launcher.util.log_mask import mask_files

    log_path = request.log
    proc = subprocess.Popen(
        request.submit_argv,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    assert proc.stdout is not None
    try:
        with open(log_path, "ab") as log:
            for raw in proc.stdout:
                line = masking.mask(raw.decode(errors="replace"), values)
                log.write(line.encode())
                log.flush()
                sys.stdout.write(line)
                sys.stdout.flush()
        returncode = proc.wait()
    except KeyboardInterrupt:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait()
        raise BackendError(f"interrupted; the job was stopped (log: {log_path})") from None
    finally:
        mask_files(request.torchrun_logs, values)
    details = {"log": log_path, "exit_code": returncode}
    if returncode != 0:
        return Submitted(job_id=str(proc.pid), returncode=returncode, details=details)
    return Submitted(job_id=str(proc.pid), details=details)
