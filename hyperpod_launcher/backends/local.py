"""Local: run the per-node script on this machine with torchrun (CPU/gloo without a GPU)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from hyperpod_launcher import __version__, templating
from hyperpod_launcher.backends.base import (
    TRAIN_SCRIPT,
    Rendered,
    RenderedFile,
    Submitted,
    train_script,
)
from hyperpod_launcher.errors import BackendError, UserError
from hyperpod_launcher.job import JobSpec, Secrets

RUN_SCRIPT = "local_run.sh"


def log_name(spec: JobSpec) -> str:
    return f"log-{spec.name}_{spec.launch_id}.out"


class LocalBackend:
    name = "local"

    def render(self, spec: JobSpec) -> Rendered:
        if spec.nodes != 1:
            key = "training_cfg.run.nodes" if spec.mode == "custom" else "recipes.trainer.num_nodes"
            raise UserError(f"{key}={spec.nodes}: cluster=local runs on this one machine; set 1")
        if spec.image:
            raise UserError(
                f"container={spec.image}: cluster=local runs without a container; "
                "set container=null"
            )
        text = templating.render(
            "local/run.sh.j2",
            spec=spec,
            version=__version__,
            train_script=os.path.join(spec.job_dir, TRAIN_SCRIPT),
        )
        files = {RUN_SCRIPT: RenderedFile(text, 0o755), TRAIN_SCRIPT: train_script(spec)}
        argv = ("bash", os.path.join(spec.job_dir, RUN_SCRIPT))
        summary = f"local job {spec.name}: {spec.procs_per_node} process(es) on this machine"
        return Rendered(files, argv, summary)

    def submit(self, spec: JobSpec, rendered: Rendered, secrets: Secrets) -> Submitted:
        log_path = os.path.join(spec.job_dir, log_name(spec))
        env = {**os.environ, **secrets.env}
        if spec.opts.get("detach"):
            with open(log_path, "ab") as log:
                proc = subprocess.Popen(
                    rendered.submit_argv,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
            return Submitted(job_id=str(proc.pid), details={"log": log_path, "detached": True})
        return _run_foreground(rendered.submit_argv, env, log_path, secrets)


def _run_foreground(
    argv: tuple[str, ...], env: dict[str, str], log_path: str, secrets: Secrets
) -> Submitted:
    """Run the job, streaming its output to the terminal and the log; return its status."""
    proc = subprocess.Popen(
        argv,
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
                line = secrets.mask(raw.decode(errors="replace"))
                log.write(line.encode())
                log.flush()
                sys.stdout.write(line)
                sys.stdout.flush()
        returncode = proc.wait()
    except KeyboardInterrupt:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait()
        raise BackendError(f"interrupted; the job was stopped (log: {log_path})") from None
    details = {"log": log_path, "exit_code": returncode}
    if returncode != 0:
        return Submitted(job_id=str(proc.pid), returncode=returncode, details=details)
    return Submitted(job_id=str(proc.pid), details=details)
