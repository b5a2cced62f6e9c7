"""A generated launch script submits its recipe to the real 2-node Slurm testbed: the users'
placeholders reach the recipe, the HF token reaches the job only through the environment."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import testbed

from tests.conftest import REPO

pytestmark = pytest.mark.slurm

TOKEN = "hf_launch_script_e2e_not_real"
SCRIPT = REPO / "launcher_scripts" / "llama" / "run_hf_llama3_8b_seq8k_gpu_p5x16_pretrain.sh"


def adapter_checkout(root: Path) -> Path:
    """A git repo standing in for the training adapter (its llama entry script)."""
    repo = root / "adapter"
    shutil.copytree(REPO / "tests" / "fixtures" / "adapter", repo)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    for args in (["init", "-q", "-b", "main"], ["add", "."], ["commit", "-q", "-m", "adapter"]):
        subprocess.run([*git, *args], cwd=repo, check=True, capture_output=True)
    return repo


def test_launch_script_runs_its_recipe_on_two_nodes(slurm_cluster: None, tmp_path: Path) -> None:
    repo = adapter_checkout(tmp_path)
    env = {
        **os.environ,
        "CLUSTER": "slurm",
        "BASE_RESULTS_DIR": str(tmp_path / "results"),
        "EXP_DIR": str(tmp_path / "exp"),
        "TRAIN_DIR": "/fsx/data/train",
        "HF_ACCESS_TOKEN": TOKEN,
        "PYTHON": sys.executable,
    }
    # The testbed is 2 CPU nodes: shrink the recipe through "$@" (the last override wins).
    proc = subprocess.run(
        [
            "bash",
            str(SCRIPT),
            "instance_type=none",
            "recipes.trainer.num_nodes=2",
            "recipes.trainer.devices=2",
            "recipes.model.tensor_model_parallel_degree=1",
            "recipes.model.shard_degree=4",
            "recipes.model.fp8=false",
            "recipes.model.train_batch_size=5",
            f"git.repo_url_or_path={repo}",
            "cluster.exclusive=false",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout
    match = re.search(r"submitted slurm job (\d+)", proc.stdout)
    assert match, proc.stdout
    fields = testbed.wait_for_job(match.group(1), timeout=240)
    job_dir = tmp_path / "results" / "llama3-8b-seq8k-p5x16-pretrain"
    (log,) = job_dir.glob(f"log-*_{match.group(1)}.out")
    assert fields["JobState"] == "COMPLETED", log.read_text()
    result = json.loads((tmp_path / "exp" / "result.json").read_text())
    assert result["world_size"] == 4
    assert result["train_batch_size"] == 5
    assert result["hf_access_token_in_recipe"] == "${oc.env:HF_TOKEN,null}"
    assert result["hf_token_env_present"] is True
    recipe = (job_dir / "llama3-8b-seq8k-p5x16-pretrain_hydra.yaml").read_text()
    assert "train_dir: /fsx/data/train" in recipe
    for path in job_dir.rglob("*"):
        if path.is_file() and ".git" not in path.parts:
            assert TOKEN not in path.read_text(errors="replace"), path
    assert TOKEN not in proc.stdout + proc.stderr
