"""max_restarts on SageMaker: the job's RetryStrategy, as the real SDK sends it to moto."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from conftest import sm

from tests.conftest import run_launcher


def launch(moto: Any, tmp_path: Path, *extra: str) -> Any:
    return run_launcher(
        *sm(
            "instance_type=ml.g5.12xlarge",
            "training_cfg.run.ntasks_per_node=null",
            *extra,
            tmp_path=tmp_path,
        ),
        env=moto.env,
    )


def test_max_restarts_becomes_the_retry_strategy(moto: Any, tmp_path: Path) -> None:
    moto.start_recording()
    proc = launch(moto, tmp_path, "max_restarts=2")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (create,) = moto.calls("CreateTrainingJob")
    # moto 5.2 accepts the field but does not keep it for DescribeTrainingJob: the request is
    # what there is to check.
    assert create["RetryStrategy"] == {"MaximumRetryAttempts": 2}


def test_dry_run_request_carries_the_retry_strategy(moto: Any, tmp_path: Path) -> None:
    proc = launch(moto, tmp_path / "dry", "max_restarts=3", "dry_run=true")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (request_file,) = (tmp_path / "dry").glob("*/create_training_job.json")
    assert json.loads(request_file.read_text())["RetryStrategy"] == {"MaximumRetryAttempts": 3}
    assert '"max_retry_attempts": 3' in proc.stdout

    plain = launch(moto, tmp_path / "plain", "dry_run=true")
    assert plain.returncode == 0, plain.stdout + plain.stderr
    (request_file,) = (tmp_path / "plain").glob("*/create_training_job.json")
    assert "RetryStrategy" not in json.loads(request_file.read_text())
