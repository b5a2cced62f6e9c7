"""Slurm: an sbatch script plus the per-node train script, submitted with `sbatch`."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hyperpod_launcher import __version__
from hyperpod_launcher.backends.base import (
    TRAIN_SCRIPT,
    Backend,
    RenderedFile,
    Request,
    Submitted,
    train_script,
)
from hyperpod_launcher.backends.slurm.options import SlurmOptions
from hyperpod_launcher.jobs import status as st
from hyperpod_launcher.jobs.records import JobRecord
from hyperpod_launcher.spec import mounts
from hyperpod_launcher.spec.job import JobSpec, LaunchOptions, Mount, Secrets, launch_folder
from hyperpod_launcher.util import resources, templating
from hyperpod_launcher.util.errors import BackendError, UserError

# Slurm's job states in the launcher's vocabulary.
SLURM_STATES = {
    **dict.fromkeys(
        ("PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD"),
        st.PENDING,
    ),
    **dict.fromkeys(
        ("RUNNING", "COMPLETING", "SUSPENDED", "STOPPED", "SIGNALING", "STAGE_OUT", "RESIZING"),
        st.RUNNING,
    ),
    "COMPLETED": st.SUCCEEDED,
    "CANCELLED": st.CANCELLED,
    **dict.fromkeys(
        ("FAILED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE", "PREEMPTED"),
        st.FAILED,
    ),
}
SBATCH_OPTION = re.compile(r"^[a-z][a-z0-9-]*$")
# Options the launcher sets itself; additional_parameters may not fight over them.
OWNED_OPTIONS = {"job-name", "nodes", "ntasks-per-node", "output", "error", "open-mode"}
SIMPLE_OPTIONS = (
    "partition",
    "account",
    "qos",
    "constraint",
    "exclude",
    "dependency",
    "comment",
    "gres",
    "gpus-per-node",
    "cpus-per-task",
)
# Environment each node's container needs from the batch script (names only, never values).
DOCKER_SCRIPT = "docker_node.sh"  # each node's container: named, removed however it ends
SHIPPED_DIR = "scripts"  # the launcher's own entry scripts, copied into the job folder
JOB_ENV = ("HPL_NNODES", "HPL_RDZV_HOST", "HPL_RDZV_PORT", "HPL_RDZV_ID", "HPL_RESTART_COUNT")


def _check_sbatch_value(key: str, value: Any) -> None:
    """`#SBATCH` lines are not shell: reject what sbatch's parser would mangle."""
    text = str(value)
    if not text or any(c in text for c in '"\\\n\r'):
        raise UserError(
            f"{key}={value!r}: an #SBATCH value may not be empty or contain quotes, "
            "backslashes or newlines"
        )


def _sbatch_value(value: Any) -> str:
    """A checked (`validate`) `#SBATCH` value, quoted where it holds spaces."""
    text = str(value)
    return f'"{text}"' if any(c in text for c in " \t#") else text


def _check_mem(value: Any) -> None:
    if value is not None and not re.match(r"^\d+[KMGT]?$", str(value)):
        raise UserError(f"cluster.mem={value!r}: expected megabytes or a size like 64G (0: all)")


def _check_prefix(prefix: str) -> None:
    """The prefix starts the batch script's file name and the job name: the run-name rule."""
    from hyperpod_launcher.spec.build import SAFE_NAME

    if prefix and not SAFE_NAME.match(prefix):
        raise UserError(
            f"cluster.job_name_prefix={prefix!r} is not a safe job name prefix: use letters, "
            "digits, '.', '_' or '-', starting with a letter or digit, at most 120 characters"
        )


def validate(spec: JobSpec) -> None:
    """Every value the batch script's flags take from the cluster file and the job folder."""
    opts = options(spec)
    _check_prefix(opts.job_name_prefix or "")
    if "%" in spec.job_dir:
        raise UserError(f"base_results_dir: '%' is not allowed in {spec.job_dir!r} (Slurm pattern)")
    _check_sbatch_value("base_results_dir", _log_pattern(spec))
    _check_mem(opts.mem)
    for option in SIMPLE_OPTIONS:
        value = getattr(opts, option.replace("-", "_"))
        if value is not None:
            _check_sbatch_value(f"cluster.{option.replace('-', '_')}", value)
    for key, value in (opts.additional_parameters or {}).items():
        option = key.replace("_", "-")
        if not SBATCH_OPTION.match(option) or option in OWNED_OPTIONS:
            raise UserError(
                f"cluster.additional_parameters.{key}: not an sbatch option this escape hatch "
                f"may set (launcher-owned: {', '.join(sorted(OWNED_OPTIONS))})"
            )
        if value is not None and value is not True:
            _check_sbatch_value(f"cluster.additional_parameters.{key}", value)


def _log_pattern(spec: JobSpec) -> str:
    return os.path.join(spec.job_dir, "log-%x_%j")


def options(spec: JobSpec) -> SlurmOptions:
    return spec.opts


def sbatch_flags(spec: JobSpec, job_name: str) -> list[str]:
    opts = options(spec)
    log = _log_pattern(spec)
    flags: dict[str, str | None] = {
        "job-name": _sbatch_value(job_name),
        "nodes": str(spec.nodes),
        "ntasks-per-node": "1",
        "output": _sbatch_value(log + ".out"),
        "open-mode": "append",
    }
    if not opts.stderr_to_stdout:
        flags["error"] = _sbatch_value(log + ".err")
    if (
        spec.time_limit
    ):  # checked at build (hyperpod_launcher.config.time_limit): sbatch's own forms
        flags["time"] = spec.time_limit
    if opts.mem is not None:
        flags["mem"] = str(opts.mem)
    for option in SIMPLE_OPTIONS:
        value = getattr(opts, option.replace("-", "_"))
        if value is not None:
            flags[option] = _sbatch_value(value)
    for key, value in (opts.additional_parameters or {}).items():
        flags[key.replace("_", "-")] = (
            None if value is None or value is True else _sbatch_value(value)
        )
    lines = [f"--{k}" if v is None else f"--{k}={v}" for k, v in flags.items()]
    if opts.exclusive:
        lines.append("--exclusive")
    if spec.max_restarts:
        lines.append("--requeue")
    return lines


def container_runtime(spec: JobSpec) -> str | None:
    """None (bare metal), 'pyxis' (enroot squashfs or `registry#image`) or 'docker'."""
    if not spec.image:
        return None
    chosen = options(spec).container_runtime
    if chosen != "auto":
        return chosen
    return "pyxis" if spec.image.endswith(".sqsh") or "#" in spec.image else "docker"


def _mounts(spec: JobSpec) -> list[Mount]:
    """The job folder (scripts, recipe, code), the experiment folder and the paths the recipe
    names, then the user's; de-duplicated and folded (mounts.fold)."""
    auto = [Mount(spec.job_dir, spec.job_dir)]
    if spec.exp_dir:
        auto.append(Mount(spec.exp_dir, spec.exp_dir))
    if spec.code.is_local and spec.code.location:
        auto.append(Mount(spec.code.location, spec.code.location, "ro"))
    return mounts.fold([*auto, *spec.data_mounts, *spec.mounts])


def _writable_sources(spec: JobSpec) -> list[str]:
    """Folders the job writes into: created before the container mounts them."""
    return [m.source for m in _mounts(spec) if not mounts.is_read_only(m)]


def _ship_entry(spec: JobSpec) -> tuple[JobSpec, dict[str, RenderedFile]]:
    """An entry script that ships with the launcher is copied into the job folder, so the job
    reads it from there (in a container too), not from the launcher's install."""
    script = spec.entry.script
    if not script or not os.path.isabs(script) or not resources.is_example(script):
        return spec, {}
    relpath = os.path.join(SHIPPED_DIR, os.path.basename(script))
    entry = dataclasses.replace(spec.entry, script=os.path.join(spec.launch_dir, relpath))
    shipped = {}
    for path in [script, *resources.example_companions(script)]:
        name = os.path.join(SHIPPED_DIR, os.path.basename(path))
        shipped[name] = RenderedFile(Path(path).read_text(encoding="utf-8"), 0o644)
    return dataclasses.replace(spec, entry=entry), shipped


def srun_flags(spec: JobSpec, runtime: str | None) -> list[str]:
    flags = ["--kill-on-bad-exit=1"]
    # Slurm 22.05's srun does not inherit --cpus-per-task from sbatch.
    opts = options(spec)
    if opts.cpus_per_task:
        flags.append(f"--cpus-per-task={opts.cpus_per_task}")
    if opts.auto_resume:
        flags.append("--auto-resume=1")  # HyperPod's Slurm plugin: replace the node, rerun
    flags += [str(a) for a in opts.srun_args or []]
    if runtime == "pyxis":
        flags += [
            f"--container-image={spec.image}",
            "--container-mounts=" + ",".join(str(m) for m in _mounts(spec)),
            "--no-container-mount-home",
        ]
    return flags


def docker_flags(spec: JobSpec) -> list[str]:
    flags = ["--network=host", "--ipc=host"]
    if spec.accelerator == "gpu":
        flags.append("--gpus=all")
    if spec.accelerator == "neuron" or (spec.instance and spec.instance.efa):
        flags.append("--privileged")  # Neuron and EFA device nodes
    for mount in _mounts(spec):
        flags.append(f"--volume={mount}")
    compile_env = ("HPL_COMPILE_RDZV_PORT",) if spec.neuron_compile else ()
    for name in (*JOB_ENV, *compile_env, *spec.secret_env):
        flags.append(f"--env={name}")
    flags += [str(a) for a in options(spec).slurm_docker_cfg.docker_args or []]
    return flags


_ECR = re.compile(r"^(\d{12}\.dkr\.ecr(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?)/")


def ecr_registry(image: str) -> tuple[str, str] | None:
    """(registry host, region) of an Amazon ECR private image; None for any other image."""
    match = _ECR.match(image)
    return (match.group(1), match.group(2)) if match else None


def docker_command(spec: JobSpec, train_script_path: str) -> str:
    steps = [str(c) for c in options(spec).slurm_docker_cfg.post_launch_commands or []]
    steps.append("exec bash " + templating.shell_quote(train_script_path))
    return " && ".join(steps)


class SlurmBackend(Backend[Request]):
    preflight_checks = "hyperpod_launcher.backends.slurm.preflight"  # what `preflight` asks
    metrics_in_job_folder = True
    # The nodes run the submit host's checkout; a dry run makes none.
    checkout_hint = "cluster.slurm_create_submission_file_only=true writes them and checks it out"

    def writes_only(self, spec: JobSpec) -> bool:
        return options(spec).slurm_create_submission_file_only

    def writes_only_flag(self, spec: JobSpec) -> str | None:
        set_ = self.writes_only(spec)
        return "cluster.slurm_create_submission_file_only=true" if set_ else None

    def validate(self, spec: JobSpec) -> None:
        validate(spec)

    def render(self, spec: JobSpec, launch: LaunchOptions) -> Request:
        prefix = options(spec).job_name_prefix or ""
        job_name = f"{prefix}{spec.name}"
        submission = f"{prefix}{spec.name}_submission.sh"
        # The job reads only its launch's own folder: a relaunch cannot change what it runs.
        train_path = os.path.join(spec.launch_dir, TRAIN_SCRIPT)
        submit_argv = ("sbatch", "--parsable", os.path.join(spec.launch_dir, submission))
        runtime = container_runtime(spec)
        spec, shipped = _ship_entry(spec)
        sbatch = templating.render(
            "slurm/sbatch.sh.j2",
            spec=spec,
            version=__version__,
            sbatch_flags=sbatch_flags(spec, job_name),
            srun_flags=srun_flags(spec, runtime),
            runtime=runtime,
            docker_script=os.path.join(spec.launch_dir, DOCKER_SCRIPT),
            train_script=train_path,
            writable_sources=_writable_sources(spec) if runtime else [],
        )
        files = {
            submission: RenderedFile(sbatch, 0o755),
            TRAIN_SCRIPT: train_script(spec),
            **shipped,
        }
        if runtime == "docker":
            files[DOCKER_SCRIPT] = RenderedFile(
                templating.render(
                    "slurm/docker_node.sh.j2",
                    spec=spec,
                    version=__version__,
                    docker_flags=docker_flags(spec),
                    docker_command=docker_command(spec, train_path),
                    ecr=ecr_registry(spec.image or ""),
                ),
                0o755,
            )
        summary = f"slurm job {job_name}: {spec.nodes} node(s) x {spec.procs_per_node} process(es)"
        return Request(files, submit_argv, summary)

    def submit(self, request: Request, secrets: Secrets) -> Submitted:
        # sbatch exports the submit environment to the job: the one channel for secrets.
        env = {**os.environ, **secrets.env}
        try:
            proc = subprocess.run(
                request.submit_argv,
                env=env,
                capture_output=True,
                text=True,
                check=False,
                # The job's working folder is then its launch folder: find_submitted's key.
                cwd=os.path.dirname(request.submit_argv[-1]),
            )
        except FileNotFoundError:
            raise BackendError(
                "sbatch not found on PATH: run this on a Slurm login node, or use "
                "dry_run=true to only write the scripts"
            ) from None
        if proc.returncode != 0:
            message = secrets.mask(proc.stderr.strip() or proc.stdout.strip())
            raise BackendError(f"sbatch failed (exit {proc.returncode}): {message}")
        job_id = proc.stdout.strip().split(";")[0]
        return Submitted(job_id=job_id, details={"sbatch_stdout": proc.stdout.strip()})

    def find_submitted(self, record: JobRecord) -> str | None:
        """The queued or running job of a launch whose launcher ended before recording it:
        the one whose working folder is the launch's folder (sbatch runs there)."""
        launch_dir = launch_folder(record.job_dir, str(record.launch_id))
        proc = subprocess.run(
            ["squeue", "--me", "--noheader", "--format=%i|%Z"],
            capture_output=True,
            text=True,
            check=False,
        )
        for line in proc.stdout.splitlines():
            job_id, _, workdir = line.strip().partition("|")
            if workdir == launch_dir:
                return job_id
        return None

    def status(self, records: list[JobRecord], detailed: bool = False) -> list[st.JobStatus]:
        states = query([str(r.job_id) for r in records])
        return [
            states[str(r.job_id)].with_cause(Path(r.job_dir).glob(f"log-*_{r.job_id}.*"))
            for r in records
        ]

    def logs(self, record: JobRecord, follow: bool, rank: int | None) -> Iterator[str]:
        from hyperpod_launcher.jobs import logfiles

        job_dir, job_id = Path(record.job_dir), str(record.job_id)
        return logfiles.lines(
            lambda: job_dir.glob(f"log-*_{job_id}.*"),
            lambda: query([job_id])[job_id].finished,
            follow=follow,
            rank=rank,
        )

    def cancel(self, record: JobRecord) -> str:
        job_id = str(record.job_id)
        current = query([job_id])[job_id]
        if current.finished:
            return f"job {job_id} already finished: {current.describe()}"
        proc = _slurm(["scancel", job_id])
        if proc.returncode != 0:
            raise BackendError(f"scancel {job_id} failed: {proc.stderr.strip()}")
        return f"cancelled slurm job {job_id}"


def _slurm(argv: list[str]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(argv, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise BackendError(
            f"{argv[0]} not found on PATH: run this on a Slurm login node (where the job was "
            "submitted from)"
        ) from None


def _job_fields(job_id: str) -> dict[str, str]:
    """`scontrol show job -o` as a dict (values with spaces are rare and not needed here)."""
    proc = _slurm(["scontrol", "show", "job", "-o", job_id])
    if proc.returncode != 0:
        return {}
    return dict(part.split("=", 1) for part in proc.stdout.split() if "=" in part)


def _status_of(backend_state: str, exit_field: str | None = None, detail: str = "") -> st.JobStatus:
    """`exit_field` is Slurm's `code:signal`."""
    word = backend_state.split()[0].rstrip("+") if backend_state else "UNKNOWN"
    state = SLURM_STATES.get(word, st.UNKNOWN)
    code = None
    if state in st.TERMINAL and exit_field and exit_field[0].isdigit():
        code = int(exit_field.split(":")[0])
    return st.JobStatus(state, word, code, detail)


def _from_squeue(job_ids: list[str]) -> dict[str, st.JobStatus]:
    fields = "JobID:|,State:|,Reason:|,exit_code:|"
    proc = _slurm(
        ["squeue", "--noheader", "--states=all", f"--jobs={','.join(job_ids)}", "-O", fields]
    )
    found = {}
    for line in proc.stdout.splitlines():
        job_id, state, reason, raw = ([*line.split("|"), "", "", ""])[:4]
        detail = "" if reason.strip() in ("None", "") else reason.strip()
        status = int(raw) if raw.strip().isdigit() else None  # a wait(2) status
        exit_field = None if status is None else f"{status >> 8}:{status & 0x7F}"
        found[job_id.strip()] = _status_of(state, exit_field, detail)
    return found


def _from_sacct(job_ids: list[str]) -> dict[str, st.JobStatus]:
    proc = _slurm(
        [
            "sacct",
            "--noheader",
            "--parsable2",
            "--allocations",
            f"--jobs={','.join(job_ids)}",
            "--format=JobIDRaw,State,ExitCode",
        ]
    )
    found = {}
    for line in proc.stdout.splitlines() if proc.returncode == 0 else []:
        job_id, state, exit_field = ([*line.split("|"), "", ""])[:3]
        found[job_id] = _status_of(state, exit_field)
    return found


def _from_scontrol(job_ids: list[str]) -> dict[str, st.JobStatus]:
    found = {}
    for job_id in job_ids:
        fields = _job_fields(job_id)
        if fields:
            found[job_id] = _status_of(fields.get("JobState", ""), fields.get("ExitCode"))
    return found


FORGOTTEN = st.JobStatus(
    st.UNKNOWN,
    "UNKNOWN",
    detail="not known to slurmctld any more and accounting (sacct) has no record of it",
)


def query(job_ids: list[str]) -> dict[str, st.JobStatus]:
    """States and exit codes of many jobs: one squeue call; then sacct for the jobs slurmctld
    has forgotten; then scontrol for any still missing (an id squeue could not list)."""
    found: dict[str, st.JobStatus] = {}
    for source in (_from_squeue, _from_sacct, _from_scontrol):
        missing = [j for j in job_ids if j not in found]
        if not missing:
            break
        found.update(source(missing))
    return {job_id: found.get(job_id, FORGOTTEN) for job_id in job_ids}
