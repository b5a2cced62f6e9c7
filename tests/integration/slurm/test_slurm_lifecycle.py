"""Follow jobs on the real Slurm testbed: jobs, status, logs, cancel, --wait and restarts."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import testbed

from tests.conftest import REPO, run_cli, run_launcher

pytestmark = pytest.mark.slurm
SCRIPTS = REPO / "tests" / "fixtures" / "scripts"


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, slurm_cluster: None) -> dict[str, str]:
    return {"HPL_STATE_DIR": str(tmp_path_factory.mktemp("state"))}


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("results")


def launch(env: dict[str, str], results: Path, name: str, script: str, *extra: str):
    return run_launcher(
        "cluster=slurm",
        f"base_results_dir={results}",
        "cluster.exclusive=false",
        f"training_cfg.run.name={name}",
        f"training_cfg.entry_script={SCRIPTS / script}",
        "training_cfg.run.ntasks_per_node=1",
        *extra,
        env=env,
    )


def job_id_of(proc: subprocess.CompletedProcess[str]) -> str:
    match = re.search(r"submitted slurm job (\d+)", proc.stdout)
    assert match, proc.stdout + proc.stderr
    return match.group(1)


def wait_state(env: dict[str, str], ref: str, states: set[str], timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        proc = run_cli("status", ref, "--json", env=env)
        assert proc.returncode == 0, proc.stderr
        status = json.loads(proc.stdout)
        if status["state"] in states or time.monotonic() > deadline:
            return status
        time.sleep(0.5)


def test_wait_streams_logs_and_exits_with_success(env: dict[str, str], results: Path) -> None:
    proc = launch(
        env,
        results,
        "ranks",
        "ranks.py",
        "training_cfg.run.nodes=2",
        "training_cfg.run.ntasks_per_node=2",
        "--wait",
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "[rank3]:hello from rank 3 of 4" in proc.stdout
    assert "succeeded (COMPLETED), exit code 0" in proc.stdout
    status = json.loads(run_cli("status", "ranks", "--json", env=env).stdout)
    assert (status["state"], status["backend_state"], status["exit_code"]) == (
        "succeeded",
        "COMPLETED",
        0,
    )
    only = run_cli("logs", "ranks", "--rank", "2", env=env)
    assert only.returncode == 0, only.stderr
    assert only.stdout.strip() == "[rank2]:hello from rank 2 of 4"
    everything = run_cli("logs", str(results / "ranks"), env=env).stdout
    assert all(f"[rank{r}]:hello from rank {r} of 4" in everything for r in range(4))


def test_failed_job_status_and_exit_code(env: dict[str, str], results: Path) -> None:
    proc = launch(env, results, "failing", "fail.py", "--wait")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    status = json.loads(run_cli("status", "failing", "--json", env=env).stdout)
    assert (status["state"], status["backend_state"], status["exit_code"]) == (
        "failed",
        "FAILED",
        3,  # the worker's own code, from torchrun's summary (torchrun itself exits 1)
    )


def test_cancel_a_running_job_is_idempotent(env: dict[str, str], results: Path) -> None:
    job_id = job_id_of(launch(env, results, "sleeper", "sleep.py"))
    assert wait_state(env, job_id, {"running"})["state"] == "running"
    deadline = time.monotonic() + 120
    while "[rank0]:sleeping" not in run_cli("logs", job_id, env=env).stdout:
        assert time.monotonic() < deadline, "the job never started its script"
        time.sleep(0.5)
    follow = subprocess.Popen(
        [sys.executable, "-m", "hyperpod_launcher", "logs", "-f", job_id],
        cwd=REPO,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        text=True,
    )
    first = run_cli("cancel", job_id, env=env)
    assert first.returncode == 0 and f"cancelled slurm job {job_id}" in first.stdout
    status = wait_state(env, job_id, {"cancelled"})
    assert (status["state"], status["backend_state"]) == ("cancelled", "CANCELLED")
    again = run_cli("cancel", job_id, env=env)
    assert again.returncode == 0 and "already finished" in again.stdout
    out, _ = follow.communicate(timeout=60)
    assert "[rank0]:sleeping" in out  # `logs -f` printed the log and ended with the job
    assert follow.returncode == 0


def test_failed_attempt_restarts_and_resumes(env: dict[str, str], results: Path) -> None:
    proc = launch(env, results, "flaky", "flaky.py", "max_restarts=1", "--wait")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    job_id = job_id_of(proc)
    fields = testbed.wait_for_job(job_id, timeout=180)
    log = run_cli("logs", job_id, env=env).stdout
    assert fields["JobState"] == "COMPLETED", (fields, log)
    assert "[rank0]:attempt 0" in log and "[rank0]:attempt 1" in log
    assert "attempt 1 failed with exit status 1; restarting (1 of 1)" in log
    assert "[rank0]:resumed after a restart" in log
    submission = (results / "flaky" / "sagemaker-flaky_submission.sh").read_text()
    assert "#SBATCH --requeue" in submission  # node failures: Slurm requeues the job


def test_restarts_stop_at_max_restarts(env: dict[str, str], results: Path) -> None:
    proc = launch(env, results, "always-failing", "fail.py", "max_restarts=2", "--wait")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    log = run_cli("logs", "always-failing", env=env).stdout
    assert "restarting (2 of 2)" in log and "restarting (3 of 2)" not in log
    status = json.loads(run_cli("status", "always-failing", "--json", env=env).stdout)
    assert status["state"] == "failed"


def test_jobs_lists_launches_with_their_state(env: dict[str, str], results: Path) -> None:
    launch(env, results, "listed", "fail.py", "--wait")
    proc = run_cli("jobs", env=env)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split()[:4] == ["NAME", "BACKEND", "JOB", "ID"]
    (row,) = [line for line in lines if line.startswith("listed ")]
    assert "slurm" in row and "failed (FAILED)" in row


def test_bad_job_references_are_one_line(env: dict[str, str], tmp_path: Path) -> None:
    unknown = run_cli("status", "no-such-job", env=env)
    assert unknown.returncode == 2
    assert unknown.stderr.startswith("error: unknown job 'no-such-job'")
    assert len(unknown.stderr.strip().splitlines()) == 1
    bare = run_cli("logs", str(tmp_path), env=env)
    assert bare.returncode == 2 and "no job.json in this folder" in bare.stderr


def test_missing_squeue_says_what_to_do(env: dict[str, str], results: Path) -> None:
    launch(env, results, "nosqueue", "fail.py", "cluster.slurm_create_submission_file_only=true")
    record = json.loads((results / "nosqueue" / "job.json").read_text())
    assert record["submit"]["status"] == "dry_run"
    job_id = job_id_of(launch(env, results, "elsewhere", "fail.py"))
    proc = run_cli("status", job_id, env={**env, "PATH": "/nonexistent"})
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        "error: squeue not found on PATH: run this on a Slurm login node (where the job was "
        "submitted from)"
    )
