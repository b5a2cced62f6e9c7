"""The local backend with real torchrun processes: the README's quickstart path."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, require, run_launcher

FAIL_SCRIPT = REPO / "tests" / "fixtures" / "scripts" / "fail.py"


@pytest.fixture(autouse=True)
def _torch() -> None:
    require(importlib.util.find_spec("torch") is not None, "torch (torchrun)")


def test_quickstart_default_runs_the_smoke_job_and_succeeds(tmp_path: Path) -> None:
    proc = run_launcher(cwd=tmp_path)  # exactly `python main.py`, from a fresh folder
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "all_reduce OK: world size 2, sum 1" in proc.stdout
    assert "job allreduce-smoke succeeded" in proc.stdout
    job_dir = tmp_path / "results" / "allreduce-smoke"
    record = json.loads((job_dir / "job.json").read_text())
    assert record["backend"] == "local" and record["submit"]["status"] == "succeeded"
    log = Path(record["details"]["log"])
    assert log.parent == job_dir and "all_reduce OK" in log.read_text()


def test_failing_job_returns_its_exit_status(tmp_path: Path) -> None:
    proc = run_launcher(
        f"base_results_dir={tmp_path}",
        f"training_cfg.entry_script={FAIL_SCRIPT}",
        "training_cfg.run.ntasks_per_node=1",
    )
    assert proc.returncode != 0
    assert "failed with exit status" in proc.stdout
    record = json.loads((tmp_path / "fail" / "job.json").read_text())  # named after fail.py
    assert record["submit"]["status"] == "failed"
    assert record["details"]["exit_code"] == proc.returncode


def test_detached_job_returns_at_once_and_logs_to_the_job_folder(tmp_path: Path) -> None:
    proc = run_launcher(f"base_results_dir={tmp_path}", "cluster.detach=true")
    assert proc.returncode == 0, proc.stderr
    pid = int(re.search(r"submitted local job (\d+)", proc.stdout).group(1))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    record = json.loads((tmp_path / "allreduce-smoke" / "job.json").read_text())
    assert record["submit"]["status"] == "submitted" and record["job_id"] == str(pid)
    log = Path(record["details"]["log"])
    for _ in range(50):
        if "all_reduce OK" in log.read_text():
            break
        time.sleep(0.2)
    assert "all_reduce OK: world size 2" in log.read_text()


def test_local_backend_refuses_several_nodes(tmp_path: Path) -> None:
    proc = run_launcher(f"base_results_dir={tmp_path}", "training_cfg.run.nodes=2")
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "error: training_cfg.run.nodes=2: cluster=local runs on this one machine; set 1"
    )
    assert not tmp_path.joinpath("allreduce-smoke").exists()
