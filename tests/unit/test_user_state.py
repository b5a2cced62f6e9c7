"""Tests keep to their own state: launches are indexed in the test's folder, never the user's."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

from hyperpod_launcher.jobs import index as job_index
from hyperpod_launcher.jobs import records
from tests.conftest import (
    REPO,
    USER_INDEX,
    added_to_user_index,
    require,
    run_cli,
    run_launcher,
    user_index_mark,
)


def test_every_test_and_its_subprocesses_get_their_own_state(isolated_state: Path) -> None:
    assert job_index.index_path() == isolated_state / "state" / "jobs.db"
    assert job_index.index_path() != USER_INDEX
    seen = subprocess.run(
        [
            sys.executable,
            "-c",
            "from hyperpod_launcher.jobs import index as job_index; print(job_index.index_path())",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=True,
    ).stdout.strip()
    assert seen == str(isolated_state / "state" / "jobs.db")
    assert os.environ["XDG_CACHE_HOME"].startswith(str(isolated_state))


def test_a_real_launch_is_indexed_here_and_not_in_the_users_index(
    isolated_state: Path, tmp_path: Path
) -> None:
    require(importlib.util.find_spec("torch") is not None, "torch (torchrun)")
    before = user_index_mark()
    proc = run_launcher(
        f"base_results_dir={tmp_path / 'results'}",
        f"training_cfg.entry_script={REPO / 'tests' / 'fixtures' / 'scripts' / 'ranks.py'}",
        "training_cfg.run.name=isolated",
        "training_cfg.run.ntasks_per_node=1",
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert added_to_user_index(before, str(tmp_path)) == []
    (entry,) = job_index.latest(None)
    assert entry.name == "isolated"
    assert entry.job_dir == str(tmp_path / "results" / "isolated")


def _index(tmp_path: Path, *entries: dict[str, object]) -> None:
    for entry in entries:
        job_index.put(records.JobRecord.from_dict(entry))


def _entry(tmp_path: Path, name: str, backend: str, job_id: str | None) -> dict[str, object]:
    return {
        "launch_id": f"L-{name}",
        "name": name,
        "backend": backend,
        "job_id": job_id,
        "job_dir": str(tmp_path / name),
        "submitted_at": "2026-11-23T00:00:00+00:00",
    }


NO_AWS = {"AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent"}


def test_jobs_asks_aws_only_for_listed_sagemaker_launches(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    _index(
        tmp_path,
        _entry(tmp_path, "old-sm", "sm_jobs", "old-sm-123"),
        _entry(tmp_path, "recent", "local", "999999999"),
    )
    listing = subprocess.run(
        [sys.executable, "-m", "hyperpod_launcher", "jobs", "--limit", "1"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**env, **NO_AWS},
        check=False,
    )
    assert listing.returncode == 0, listing.stderr
    assert "recent" in listing.stdout and "old-sm" not in listing.stdout
    assert listing.stderr == ""
    # The SageMaker launch listed: then its state needs AWS, and its absence is said once.
    every = subprocess.run(
        [sys.executable, "-m", "hyperpod_launcher", "jobs"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**env, **NO_AWS},
        check=False,
    )
    assert every.returncode == 0
    assert every.stderr.count("warning:") == 1, every.stderr


def test_a_launch_whose_submit_failed_is_listed_without_asking_its_backend(
    tmp_path: Path,
) -> None:
    _index(tmp_path, _entry(tmp_path, "never-ran", "sm_jobs", None))
    listing = run_cli("jobs", env=NO_AWS)
    assert listing.returncode == 0
    assert listing.stderr == ""
    assert "failed (not submitted)" in listing.stdout
