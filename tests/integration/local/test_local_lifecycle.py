"""Follow local jobs: jobs, status, logs (--rank), cancel, with real torchrun processes."""

from __future__ import annotations

import importlib.util
import json
import re
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, require, run_cli, run_launcher

SCRIPTS = REPO / "tests" / "fixtures" / "scripts"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    require(importlib.util.find_spec("torch") is not None, "torch (torchrun)")
    return {"HPL_STATE_DIR": str(tmp_path / "state")}


def launch(env: dict[str, str], tmp_path: Path, script: str, *extra: str) -> str:
    proc = run_launcher(
        f"base_results_dir={tmp_path / 'results'}",
        f"training_cfg.entry_script={SCRIPTS / script}",
        f"training_cfg.run.name={Path(script).stem}",
        *extra,
        env=env,
    )
    match = re.search(r"submitted local job (\d+)", proc.stdout)
    assert match, proc.stdout + proc.stderr
    return match.group(1)


def status(env: dict[str, str], ref: str) -> dict:
    proc = run_cli("status", ref, "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_detached_job_status_logs_by_rank_and_jobs(env: dict[str, str], tmp_path: Path) -> None:
    pid = launch(env, tmp_path, "ranks.py", "wait=false")
    follow = run_cli("logs", "ranks", "--follow", env=env)  # returns when the job ends
    assert "[rank0]:hello from rank 0 of 2" in follow.stdout
    assert "[rank1]:hello from rank 1 of 2" in follow.stdout
    final = status(env, pid)
    assert (final["state"], final["exit_code"]) == ("succeeded", 0)
    only = run_cli("logs", "ranks", "--rank", "1", env=env)
    assert only.stdout.strip() == "[rank1]:hello from rank 1 of 2"
    listing = run_cli("jobs", env=env).stdout
    assert re.search(rf"^ranks\s+local\s+{pid}\s+succeeded \(exited\)", listing, re.M), listing


def test_failed_local_job(env: dict[str, str], tmp_path: Path) -> None:
    pid = launch(
        env, tmp_path, "fail.py", "cluster.detach=true", "training_cfg.run.ntasks_per_node=1"
    )
    deadline = time.monotonic() + 120
    while (current := status(env, pid))["state"] == "running":
        assert time.monotonic() < deadline
        time.sleep(0.3)
    # torchrun exits 1; the worker's own 3 comes from torchrun's summary in the log
    assert (current["state"], current["exit_code"]) == ("failed", 3)
    assert current["failure"]["rank"] == 0 and current["failure"]["exit_code"] == 3


def test_cancel_local_job_is_idempotent(env: dict[str, str], tmp_path: Path) -> None:
    pid = launch(env, tmp_path, "sleep.py", "wait=false", "training_cfg.run.ntasks_per_node=1")
    deadline = time.monotonic() + 120
    while "[rank0]:sleeping" not in run_cli("logs", pid, env=env).stdout:
        assert time.monotonic() < deadline, "the job never started"
        time.sleep(0.3)
    assert status(env, pid)["state"] == "running"
    first = run_cli("cancel", "sleep", env=env)
    assert first.returncode == 0 and first.stdout.strip() == f"cancelled local job {pid}"
    assert status(env, pid)["state"] == "cancelled"
    again = run_cli("cancel", pid, env=env)
    assert again.returncode == 0 and "already finished" in again.stdout
    assert (
        not Path(f"/proc/{pid}").exists()
        or b"sleep.py" not in Path(f"/proc/{pid}/cmdline").read_bytes()
    )
