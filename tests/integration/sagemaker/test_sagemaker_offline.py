"""`cluster=sm_jobs dry_run=true` offline: with a local git.repo_url_or_path the dry run makes
its own checkout and serves the SDK's adapter clone from it, so the exact CreateTrainingJob
request is printed with git's network access made unusable (every https fetch goes through a
proxy on a closed local port). With a remote URL it writes its artifacts and fails in one line
naming the URL."""

from __future__ import annotations

import importlib.util
import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import require, run_launcher

L8B = "recipes=training/llama/hf_llama3_8b_seq8k_gpu_p5x16_pretrain"
NO_NETWORK = {  # git's https goes to a closed port on this machine: nothing leaves it
    "GIT_CONFIG_COUNT": "2",
    "GIT_CONFIG_KEY_0": "http.proxy",
    "GIT_CONFIG_VALUE_0": "http://127.0.0.1:9",
    "GIT_CONFIG_KEY_1": "https.proxy",
    "GIT_CONFIG_VALUE_1": "http://127.0.0.1:9",
    "HTTPS_PROXY": "http://127.0.0.1:9",
    "AWS_DEFAULT_REGION": "us-west-2",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_EC2_METADATA_DISABLED": "true",
}


@pytest.fixture(autouse=True)
def _sdk() -> None:
    require(
        importlib.util.find_spec("sagemaker") is not None, "the SageMaker SDK (sagemaker extra)"
    )


def adapter(root: Path) -> Path:
    (root / "examples" / "llama").mkdir(parents=True)
    (root / "examples" / "llama" / "llama_pretrain.py").write_text("print('llama')\n")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-C", str(root)]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "adapter"], check=True)
    return root


def launch(tmp_path: Path, *overrides: str):
    return run_launcher(
        L8B,
        "cluster=sm_jobs",
        "cluster.sm_jobs_config.output_path=s3://bucket/out",
        "cluster.sm_jobs_config.role=arn:aws:iam::123456789012:role/sm",
        f"base_results_dir={tmp_path / 'results'}",
        "dry_run=true",
        *overrides,
        env={
            **NO_NETWORK,
            "HPL_STATE_DIR": str(tmp_path / "state"),
            "XDG_CACHE_HOME": str(tmp_path / "cache"),
        },
    )


def test_a_local_repository_dry_runs_offline(tmp_path: Path) -> None:
    proc = launch(tmp_path, f"git.repo_url_or_path={adapter(tmp_path / 'adapter')}")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "CreateTrainingJob request: " in proc.stdout
    (job_dir,) = (tmp_path / "results").iterdir()
    request = json.loads((job_dir / "create_training_job.json").read_text())
    assert request["ResourceConfig"]["InstanceType"] == "ml.p5.48xlarge"
    assert request["ResourceConfig"]["InstanceCount"] == 16


def test_a_remote_url_dry_runs_offline_from_a_local_empty_repository(tmp_path: Path) -> None:
    """The SDK's clone of the recipe's code is served locally: git's https is unusable here."""
    url = "https://github.com/aws/sagemaker-hyperpod-training-adapter-for-nemo.git"
    proc = launch(tmp_path, f"git.repo_url_or_path={url}")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (job_dir,) = (tmp_path / "results").iterdir()
    request = json.loads((job_dir / "create_training_job.json").read_text())
    assert request["HyperParameters"]["sagemaker_program"] == '"llama_pretrain.py"'
    for name in ("launch.py", "recipe.yaml", "launcher_cmd.log"):
        assert (job_dir / name).is_file(), name
