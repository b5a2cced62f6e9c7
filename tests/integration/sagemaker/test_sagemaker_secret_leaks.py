"""SageMaker: a rejected submit keeps its secrets out of every output and file it leaves."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from conftest import sm

from hyperpod_launcher.backends.sm_jobs import runner
from tests.conftest import run_launcher

LLAMA = "recipes=training/llama/hf_llama3_8b_seq8k_gpu_p5x16_pretrain"
HF = "hf_leakcanary_rejected_5678"
GIT = "ghp_leakcanary_rejected_8765"


def test_a_rejected_submit_shows_and_keeps_no_secret(moto: Any, tmp_path: Path) -> None:
    proc = run_launcher(
        LLAMA,
        *sm(
            "instance_type=p5.48xlarge",
            "recipes.trainer.num_nodes=1",
            "recipes.model.shard_degree=4",
            "recipes.model.data.use_synthetic_data=true",
            f"recipes.model.hf_access_token={HF}",
            "cluster.sm_jobs_config.secrets.environment=true",
            "cluster.sm_jobs_config.output_path=s3://no-such-bucket-hpl/jobs",
            tmp_path=tmp_path,
        ),
        env=moto.env,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "NoSuchBucket" in proc.stderr
    assert HF not in proc.stdout + proc.stderr
    (result,) = tmp_path.glob("*/sm_result-*.json")
    assert "error" in json.loads(result.read_text())
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert HF.encode() not in path.read_bytes(), path


def test_the_runner_masks_an_error_quoting_the_environment_before_writing_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """AWS may quote the request's Environment in a ValidationException."""
    request = tmp_path / runner.REQUEST
    request.write_text(json.dumps({"secret_env": ["HF_TOKEN", "GIT_TOKEN"]}))
    monkeypatch.setenv("HF_TOKEN", HF)
    monkeypatch.setenv("GIT_TOKEN", GIT)

    def rejected(request: dict[str, Any], here: Path) -> dict[str, Any]:
        raise RuntimeError(f"ValidationException: Environment {dict(os.environ)} is invalid")

    monkeypatch.setattr(runner, "submit", rejected)
    result = tmp_path / "sm_result-x.json"
    assert runner.main(["--request", str(request), "--result", str(result)]) == 1
    written = result.read_text()
    assert "ValidationException" in written and "****" in written
    assert HF not in written and GIT not in written
    assert HF not in capsys.readouterr().err
    assert stat.S_IMODE(result.stat().st_mode) == 0o600


def test_a_secret_over_the_environment_limit_is_refused_without_showing_it(
    tmp_path: Path,
) -> None:
    long = "hf_" + "x" * 600
    proc = run_launcher(
        LLAMA,
        *sm(
            "instance_type=p5.48xlarge",
            f"recipes.model.hf_access_token={long}",
            "cluster.sm_jobs_config.secrets.environment=true",
            "dry_run=true",
            tmp_path=tmp_path / "results",
        ),
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.splitlines() == [
        "error: HF_TOKEN: the secret's value (not shown) has 603 characters; SageMaker takes "
        "environment values of at most 512 (CreateTrainingJob Environment)"
    ]
    assert not (tmp_path / "results").exists()
