"""`jobs` and `status` stay fast: they load neither Hydra nor Jinja nor YAML nor a cloud SDK,
nor the launch-time checks that build a job (job_build and what it imports)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

HEAVY = (
    *("hydra", "omegaconf", "jinja2", "yaml", "boto3", "botocore", "kubernetes", "sagemaker"),
    *("hyperpod_launcher.spec.build", "hyperpod_launcher.spec.recipe_checks"),
    *("hyperpod_launcher.config.schema", "hyperpod_launcher.spec.required"),
)


@pytest.mark.parametrize("command", [["jobs"], ["status", "done-job"]])
def test_job_commands_import_nothing_heavy(command: list[str], tmp_path: Path) -> None:
    job_dir = tmp_path / "done-job"
    job_dir.mkdir()
    record = {
        "launch_id": "L1",
        "name": "done-job",
        "backend": "local",
        "job_id": "999999999",
        "job_dir": str(job_dir),
        "submitted_at": "2026-11-23T00:00:00+00:00",
    }
    (job_dir / "job.json").write_text(json.dumps(record))
    (job_dir / "local-L1.exit").write_text("0\n")
    (tmp_path / "jobs.jsonl").write_text(json.dumps(record) + "\n")
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "hyperpod_launcher", *command],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={"HPL_STATE_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "succeeded (exited)" in proc.stdout
    imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if "|" in line}
    assert "hyperpod_launcher.jobs.follow" in imported  # the job commands ran
    for heavy in HEAVY:
        assert not any(m == heavy or m.startswith(heavy + ".") for m in imported), heavy
