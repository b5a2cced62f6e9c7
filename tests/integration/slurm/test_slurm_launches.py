"""On the real Slurm testbed: a relaunch cannot change what a queued job runs, and concurrent
launches of one name each keep their files and their record."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import REPO, run_cli, run_launcher

pytestmark = pytest.mark.slurm
SCRIPTS = REPO / "tests" / "fixtures" / "scripts"


@pytest.fixture
def env(tmp_path: Path, slurm_cluster: None) -> dict[str, str]:
    return {"HPL_STATE_DIR": str(tmp_path / "state")}


def launch(env: dict[str, str], results: Path, name: str, *extra: str):
    return run_launcher(
        "cluster=slurm",
        f"base_results_dir={results}",
        "cluster.exclusive=false",
        f"training_cfg.run.name={name}",
        f"training_cfg.entry_script={SCRIPTS / 'show_launch.py'}",
        "training_cfg.run.ntasks_per_node=1",
        "training_cfg.run.nodes=1",
        *extra,
        env=env,
    )


def job_id_of(proc: subprocess.CompletedProcess[str]) -> str:
    match = re.search(r"submitted slurm job (\d+)", proc.stdout)
    assert match, proc.stdout + proc.stderr
    return match.group(1)


def wait_finished(env: dict[str, str], ref: str, timeout: float = 300) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        proc = run_cli("status", ref, "--json", env=env)
        assert proc.returncode == 0, proc.stderr
        state = json.loads(proc.stdout)
        if state["state"] in ("succeeded", "failed", "cancelled"):
            return state
        time.sleep(2)
    raise AssertionError(f"{ref} did not finish: {state}")


def test_a_relaunch_while_the_first_job_is_held_does_not_change_what_it_runs(
    env: dict[str, str], tmp_path: Path
) -> None:
    results = tmp_path / "results"
    held = launch(
        env,
        results,
        "relaunched",
        "+cluster.additional_parameters.hold=true",  # queued, not started
        "+env_vars.WHICH=A",
        "training_cfg.script_args=[--lr,0.1]",
    )
    first = job_id_of(held)
    try:
        refused = launch(env, results, "relaunched", "+env_vars.WHICH=B")
        assert refused.returncode == 2
        assert "still pending" in refused.stderr and "allow_concurrent=true" in refused.stderr
        second = job_id_of(
            launch(
                env,
                results,
                "relaunched",
                "allow_concurrent=true",
                "+env_vars.WHICH=B",
                "training_cfg.script_args=[--lr,0.5]",
            )
        )
    finally:
        subprocess.run(["scontrol", "release", first], check=False)
    assert wait_finished(env, first)["state"] == "succeeded"
    assert wait_finished(env, second)["state"] == "succeeded"
    job_dir = results / "relaunched"
    (log_a,) = job_dir.glob(f"log-*_{first}.out")
    (log_b,) = job_dir.glob(f"log-*_{second}.out")
    assert "which=A args=--lr 0.1" in log_a.read_text()
    assert "which=B args=--lr 0.5" in log_b.read_text()
    # The top level shows the newest launch; each launch keeps its own scripts.
    assert "WHICH=B" in (job_dir / "train_script.sh").read_text()
    launches = {
        json.loads((d / "job.json").read_text())["job_id"]: d
        for d in (job_dir / "launches").iterdir()
    }
    assert "WHICH=A" in (launches[first] / "train_script.sh").read_text()


def test_concurrent_launches_of_one_name_each_keep_their_files_and_record(
    env: dict[str, str], tmp_path: Path
) -> None:
    results = tmp_path / "results"

    def one(i: int) -> subprocess.CompletedProcess[str]:
        return launch(
            env,
            results,
            "crowd",
            "allow_concurrent=true",
            f"+env_vars.WHICH=launch{i}",
            "+cluster.additional_parameters.hold=true",  # nothing runs: the testbed is shared
        )

    with ThreadPoolExecutor(max_workers=8) as pool:
        procs = list(pool.map(one, range(16)))
    job_ids = [job_id_of(proc) for proc in procs]
    try:
        assert len(set(job_ids)) == 16
        job_dir = results / "crowd"
        by_job = {}
        for folder in (job_dir / "launches").iterdir():
            record = json.loads((folder / "job.json").read_text())
            by_job[record["job_id"]] = folder
        assert sorted(by_job) == sorted(job_ids)
        for i, job_id in enumerate(job_ids):
            assert f"WHICH=launch{i}" in (by_job[job_id] / "train_script.sh").read_text()
            found = run_cli("status", by_job[job_id].name, "--json", env=env)
            assert found.returncode == 0, found.stderr
            assert json.loads(found.stdout)["job_id"] == job_id
        listing = run_cli("jobs", "--all", env=env).stdout
        assert all(job_id in listing for job_id in job_ids)
        newest = json.loads((job_dir / "job.json").read_text())["launch_id"]
        script = job_dir / "train_script.sh"
        assert script.samefile(job_dir / "launches" / newest / "train_script.sh")
    finally:
        for job_id in job_ids:
            cancel = run_cli("cancel", job_id, env=env)
            assert cancel.returncode == 0, cancel.stderr
    for job_id in job_ids:
        assert wait_finished(env, job_id)["state"] == "cancelled"


def slow_sbatch(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """PATH with an sbatch that says when it starts, waits, then runs the real sbatch: a
    window in which to stop the launcher mid-submit."""
    real = shutil.which("sbatch")
    assert real is not None
    folder = tmp_path / "bin"
    folder.mkdir()
    started = tmp_path / "sbatch-started"
    shim = folder / "sbatch"
    shim.write_text(f'#!/bin/bash\ntouch {started}\nsleep 3\nexec {real} "$@"\n')
    shim.chmod(0o755)
    return {"PATH": f"{folder}:{os.environ['PATH']}"}, started


def start_launch(env: dict[str, str], results: Path, name: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            str(REPO / "main.py"),
            "cluster=slurm",
            f"base_results_dir={results}",
            "cluster.exclusive=false",
            f"training_cfg.run.name={name}",
            f"training_cfg.entry_script={SCRIPTS / 'show_launch.py'}",
            "training_cfg.run.ntasks_per_node=1",
            "training_cfg.run.nodes=1",
            "+cluster.additional_parameters.hold=true",
        ],
        env={**os.environ, **env},
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(path: Path) -> None:
    deadline = time.monotonic() + 120
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.1)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGKILL])
def test_a_launcher_stopped_while_sbatch_runs_leaves_the_job_on_record_and_cancellable(
    env: dict[str, str], tmp_path: Path, signum: int
) -> None:
    path_env, started = slow_sbatch(tmp_path)
    name = f"stopped-{signal.Signals(signum).name.lower()}"
    launcher = start_launch({**env, **path_env}, tmp_path / "results", name)
    wait_for(started)
    launcher.send_signal(signum)
    out, err = launcher.communicate(timeout=120)
    if signum == signal.SIGKILL:
        time.sleep(5)  # the orphaned sbatch still queues the job
    else:  # held until the job was recorded, then the launcher stops
        assert launcher.returncode == 128 + signum, out + err
        (line,) = err.strip().splitlines()
        assert line.startswith(f"error: stopped by {signal.Signals(signum).name}; slurm job ")
    found = run_cli("status", name, "--json", env=env)
    assert found.returncode == 0, found.stderr
    state = json.loads(found.stdout)
    assert state["state"] == "pending" and state["job_id"], state
    assert name in run_cli("jobs", env=env).stdout
    cancel = run_cli("cancel", name, env=env)
    assert cancel.returncode == 0, cancel.stderr
    assert wait_finished(env, state["job_id"])["state"] == "cancelled"
