"""The SageMaker request: what a dry run prints and previews is what submit sends, and the
job folder's launch.py (the package's runner, unchanged) submits a request file by hand.

Real SDK against the moto server on 127.0.0.1; the requests are compared as AWS received them.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import BUCKET, ROLE_ARN, hyperparameters, sm

from hyperpod_launcher.launch import compose
from hyperpod_launcher.launch import execute as launch
from tests.conftest import REPO

RUNNER = REPO / "hyperpod_launcher" / "backends" / "sm_jobs" / "runner.py"
SMOKE = REPO / "hyperpod_launcher" / "examples" / "allreduce_smoke.py"
LAUNCH_ID = "20261202-010203-beef"
ESTIMATOR = {
    "output_path": f"s3://{BUCKET}/by-hand",
    "instance_type": "ml.g5.2xlarge",
    "instance_count": 2,
    "base_job_name": "by-hand",
    "framework_version": "2.5.1",
    "py_version": "py311",
}


def test_dry_run_prints_and_previews_exactly_what_submit_sends(
    moto: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in moto.env.items():
        monkeypatch.setenv(name, value)
    overrides = sm(
        "instance_type=ml.g5.12xlarge",
        "training_cfg.run.ntasks_per_node=null",
        "training_cfg.script_args=[{--steps: 3}]",
        "+env_vars.MY_SETTING=on",
        tmp_path=tmp_path,
    )
    dry = compose.plan([*overrides, "dry_run=true"], launch_id=LAUNCH_ID)
    real = compose.plan(list(overrides), launch_id=LAUNCH_ID)
    assert real.request == dry.request  # one request, whether printed or sent

    printed: list[str] = []
    moto.start_recording()
    assert launch.execute(dry, ["main.py"], say=printed.append) == 0
    assert moto.recording() == []  # the dry run sent nothing
    assert str(dry) in printed  # the request itself, with the payload launch.py reads
    job_dir = Path(dry.spec.job_dir)
    previewed = json.loads((job_dir / "create_training_job.json").read_text())
    written = json.loads((job_dir / "sagemaker_request.json").read_text())
    assert written == dict(real.request.payload)

    moto.start_recording()
    assert launch.execute(real, ["main.py"], say=printed.append) == 0
    (sent,) = moto.calls("CreateTrainingJob")
    assert sent == previewed
    assert sent["TrainingJobName"] == written["job_name"]
    assert sent["Environment"]["MY_SETTING"] == "on"
    result = json.loads(Path(real.request.result).read_text())  # launch.py's outcome file
    record = json.loads((job_dir / "job.json").read_text())
    assert record["job_id"] == result["TrainingJobName"] == written["job_name"]
    assert record["submit"]["command"] == dry.request.submit_command


def _request_folder(root: Path, **changes: Any) -> Path:
    """A job folder written by hand: the runner as launch.py, a script, the request file."""
    root.mkdir()
    shutil.copy(RUNNER, root / "launch.py")
    shutil.copy(SMOKE, root / "smoke.py")
    request = {
        "job_name": "by-hand-1",
        "launch_id": "by-hand",
        "mode": "custom",
        "region": None,  # this environment's (AWS_REGION)
        "role": ROLE_ARN,
        "source_dir": "src",
        "ship": [["smoke.py", "smoke.py"]],
        "estimator": ESTIMATOR,
        "recipe": None,
        "script": {
            "entry_point": "smoke.py",
            "hyperparameters": {"steps": "2"},
            "distribution": {"torch_distributed": {"enabled": True}},
            "image_from": None,
        },
        "environment": {"PLAIN": "1"},
        "secret_env": ["HPL_TEST_SECRET"],
        "secrets_wrapper": False,
        "tensorboard": None,
        "inputs": {"s3": {"train": f"s3://{BUCKET}/data"}, "file_system": None},
        "wait": False,
        **changes,
    }
    (root / "sagemaker_request.json").write_text(json.dumps(request))
    return root


def _run(folder: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "launch.py"], cwd=folder, env=env, capture_output=True, text=True
    )


def test_launch_py_submits_a_request_file_by_hand(moto: Any, tmp_path: Path) -> None:
    folder = _request_folder(tmp_path / "job")
    moto.start_recording()
    proc = _run(folder, {**moto.env, "PATH": "/usr/bin:/bin", "HPL_TEST_SECRET": "s3cr3t"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads((folder / "sagemaker_result.json").read_text())
    assert result["TrainingJobName"] == "by-hand-1" and result["Region"] == "us-west-2"
    assert result["TrainingJobArn"].endswith(":training-job/by-hand-1")
    assert "submitted training job by-hand-1" in proc.stdout
    (sent,) = moto.calls("CreateTrainingJob")
    assert sent["TrainingJobName"] == "by-hand-1"
    assert sent["ResourceConfig"]["InstanceCount"] == 2
    assert sent["Environment"] == {"PLAIN": "1", "HPL_TEST_SECRET": "s3cr3t"}
    hyper = hyperparameters(sent)
    assert hyper["sagemaker_program"] == "smoke.py" and hyper["steps"] == "2"
    channel = sent["InputDataConfig"][0]
    assert channel["DataSource"]["S3DataSource"]["S3Uri"] == f"s3://{BUCKET}/data"


@pytest.mark.parametrize(
    ("changes", "env", "error"),
    [
        ({"ship": [["gone.py", "gone.py"]]}, {"HPL_TEST_SECRET": "x"}, "gone.py does not exist"),
        ({}, {}, "HPL_TEST_SECRET is not set in this environment"),
        (
            {"estimator": {**ESTIMATOR, "output_path": "s3://no-such-bucket-hpl/x"}},
            {"HPL_TEST_SECRET": "x"},
            "NoSuchBucket",
        ),
    ],
    ids=["missing-source", "missing-secret", "aws-error"],
)
def test_launch_py_reports_a_failure_in_its_result_file(
    moto: Any, tmp_path: Path, changes: dict[str, Any], env: dict[str, str], error: str
) -> None:
    folder = _request_folder(tmp_path / "job", **changes)
    moto.start_recording()
    proc = _run(folder, {**moto.env, "PATH": "/usr/bin:/bin", **env})
    assert proc.returncode == 1, proc.stdout + proc.stderr
    (result,) = json.loads((folder / "sagemaker_result.json").read_text()).values()
    assert error in result and proc.stderr.strip().endswith(result)
    assert moto.calls("CreateTrainingJob") == []
