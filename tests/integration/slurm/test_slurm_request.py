"""On the real Slurm testbed: what a dry run prints is what sbatch receives.

One request, rendered once for the dry run and once for the launch: equal; the dry run prints
it; the launch runs exactly its command, and the batch script Slurm stored is its file. The job
is submitted held and cancelled, so it never takes the shared testbed's nodes.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from hyperpod_launcher.jobs import records
from hyperpod_launcher.launch import compose
from hyperpod_launcher.launch import execute as launch

pytestmark = pytest.mark.slurm
LAUNCH_ID = "20261202-010203-5eed"


def test_dry_run_prints_exactly_what_sbatch_receives(slurm_cluster: None, tmp_path: Path) -> None:
    overrides = [
        "cluster=slurm",
        f"base_results_dir={tmp_path}",
        "cluster.exclusive=false",
        "training_cfg.run.name=request-check",
        "+cluster.additional_parameters.hold=true",
    ]
    dry = compose.plan([*overrides, "dry_run=true"], launch_id=LAUNCH_ID)
    real = compose.plan(overrides, launch_id=LAUNCH_ID)
    assert real.request == dry.request
    (submission,) = [name for name in real.request.files if name.endswith("_submission.sh")]

    printed: list[str] = []
    assert launch.execute(dry, ["main.py"], say=printed.append) == 0
    assert str(dry) in printed
    assert f"submit with: {real.request.submit_command}" in str(dry)

    assert launch.execute(real, ["main.py"], say=printed.append) == 0
    record = records.read_record(real.spec.job_dir)
    assert record is not None and record.job_id
    try:
        assert record.submit_command == dry.request.submit_command
        stored = subprocess.run(
            ["scontrol", "write", "batch_script", record.job_id, "-"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert stored == dry.request.files[submission].text
        assert Path(real.spec.job_dir, submission).read_text() == stored
    finally:
        subprocess.run(["scancel", record.job_id], check=False)
