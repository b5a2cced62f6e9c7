"""Values the training code needs at start: a backend default where one exists (printed),
otherwise one line, exit 2 and nothing written for a launch that submits or writes a job to
submit later; a dry run shows the job and warns."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import run_launcher

TRN = "recipes=training/llama/hf_llama3_8b_seq8k_trn1x4_pretrain"
CPT = "recipes=training/llama/hf_llama2_70b_seq4k_trn1x32_continued_pretrain"
TRN_SFT = "recipes=fine-tuning/llama/hf_llama3_8b_seq8k_trn1_fine_tuning"
NEMO = "recipes=training/llama/megatron_llama3_1_8b_nemo"
L8B = "recipes=training/llama/hf_llama3_8b_seq8k_gpu_p5x16_pretrain"
WRITE_ONLY = ("cluster=slurm", "cluster.slurm_create_submission_file_only=true")
DATA = "recipes.data.train_dir=/fsx/data"

# case -> (overrides, the key the one error line names, fragment of the rule)
MISSING = {
    "adapter data": ((L8B,), "recipes.model.data.train_dir=null", "TRAIN_DIR"),
    "NxD Training model config": (
        (TRN, DATA),
        "recipes.model.model_config=null",
        "needs the model's config",
    ),
    "NxD Training data": ((TRN,), "recipes.data.train_dir=null", "needs training data"),
    "continued pretraining checkpoint": (
        (CPT, DATA, "recipes.model.model_config=/fsx/llama2/config.json"),
        "recipes.exp_manager.resume_from_checkpoint=null",
        "random weights",
    ),
    "NxD Training fine-tuning tokenizer": (
        (
            TRN_SFT,
            DATA,
            "recipes.model.model_config=/fsx/llama3/config.json",
            "recipes.exp_manager.resume_from_checkpoint=/fsx/llama3/nxd",
        ),
        "recipes.data.tokenizer.type=null",
        "TOKENIZER_TYPE",
    ),
    "NeMo on bare metal": ((NEMO,), "container is not set", "container=nvcr.io/nvidia/nemo"),
    "NeMo data": (
        # the recipe's mock data needs none
        (NEMO, "recipes.model.data.data_impl=mmap", "container=nvcr.io/nvidia/nemo:24.07"),
        "recipes.model.data.data_prefix=[]",
        "needs training data",
    ),
}


@pytest.mark.parametrize("case", MISSING)
def test_a_missing_required_value_is_one_line_and_nothing_is_written(
    case: str, tmp_path: Path
) -> None:
    overrides, key, rule = MISSING[case]
    proc = run_launcher(*WRITE_ONLY, f"base_results_dir={tmp_path / 'r'}", *overrides, cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {key}: "), proc.stderr
    assert rule in lines[0]
    assert list(tmp_path.iterdir()) == [], "nothing may be written"


def test_slurm_supplies_the_experiment_folder_and_says_so(tmp_path: Path) -> None:
    proc = run_launcher(
        L8B,
        "cluster=slurm",
        "dry_run=true",
        f"base_results_dir={tmp_path}",
        "recipes.model.data.train_dir=/fsx/data",
    )
    assert proc.returncode == 0, proc.stderr
    exp = f"{tmp_path}/llama3-8b-seq8k-p5x16-pretrain/exp"
    assert f"cluster=slurm defaults: recipes.exp_manager.exp_dir={exp}" in proc.stdout
    recipe = yaml.safe_load(
        (
            tmp_path
            / "llama3-8b-seq8k-p5x16-pretrain"
            / "llama3-8b-seq8k-p5x16-pretrain_hydra.yaml"
        ).read_text()
    )
    assert recipe["exp_manager"]["exp_dir"] == exp
    assert recipe["exp_manager"]["checkpoint_dir"] == f"{exp}/checkpoints/"  # it interpolates
    assert "warning" not in proc.stdout + proc.stderr


def test_sagemaker_supplies_its_channel_and_checkpoint_folder(tmp_path: Path) -> None:
    proc = run_launcher(
        L8B,
        "cluster=sm_jobs",
        "dry_run=true",
        "instance_type=ml.p5.48xlarge",
        f"base_results_dir={tmp_path}",
        "cluster.sm_jobs_config.output_path=s3://bucket/output",
        "+cluster.sm_jobs_config.inputs.s3.train=s3://bucket/train",
        "cluster.sm_jobs_config.region=us-west-2",
    )
    # (the dry run then stops where the SDK would clone the adapter: no network here)
    assert (
        "cluster=sm_jobs defaults: recipes.model.data.train_dir=/opt/ml/input/data/train, "
        "recipes.exp_manager.exp_dir=/opt/ml/checkpoints"
    ) in proc.stdout, proc.stdout + proc.stderr
    written = (tmp_path / "llama3-8b-seq8k-p5x16-pretrain").glob("*_hydra.yaml")
    recipe = yaml.safe_load(next(written).read_text())
    assert recipe["model"]["data"]["train_dir"] == "/opt/ml/input/data/train"


def test_sagemaker_without_a_train_channel_names_both_ways_to_give_data(tmp_path: Path) -> None:
    proc = run_launcher(
        L8B,
        "cluster=sm_jobs",
        "instance_type=ml.p5.48xlarge",
        f"base_results_dir={tmp_path}",
        "cluster.sm_jobs_config.output_path=s3://bucket/output",
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "recipes.model.data.train_dir=null" in proc.stderr
    assert "cluster.sm_jobs_config.inputs.s3.train" in proc.stderr
    assert not (tmp_path / "llama3-8b-seq8k-p5x16-pretrain").exists()


def test_a_dry_run_shows_the_job_and_warns(tmp_path: Path) -> None:
    proc = run_launcher(L8B, "cluster=slurm", "dry_run=true", f"base_results_dir={tmp_path}")
    assert proc.returncode == 0, proc.stderr
    assert (
        "warning: recipes.model.data.train_dir=null: the adapter recipe needs training data"
    ) in proc.stdout
    assert "a launch without dry_run refuses this" in proc.stdout


def test_synthetic_data_needs_no_data_path(tmp_path: Path) -> None:
    proc = run_launcher(
        L8B,
        "cluster=slurm",
        "dry_run=true",
        f"base_results_dir={tmp_path}",
        "recipes.model.data.use_synthetic_data=true",
    )
    assert proc.returncode == 0, proc.stderr
    assert "warning" not in proc.stdout, proc.stdout


def test_preflight_reports_a_missing_value_as_a_failed_check(tmp_path: Path) -> None:
    proc = run_launcher(
        L8B, "cluster=slurm", f"base_results_dir={tmp_path / 'r'}", cwd=tmp_path
    )  # a launch: one line, exit 2
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not (tmp_path / "r").exists()
    env = {"HPL_STATE_DIR": str(tmp_path / "state"), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    proc = subprocess.run(
        [sys.executable, "-m", "hyperpod_launcher", "preflight", L8B, "cluster=slurm",
         f"base_results_dir={tmp_path / 'r'}"],
        capture_output=True, text=True, env={**os.environ, **env}, check=False,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stdout.splitlines()[0] == (
        "fail required value: recipes.model.data.train_dir=null: the adapter recipe needs "
        "training data; set recipes.model.data.train_dir=... (TRAIN_DIR in the launch scripts)"
    )


def test_trainium_fine_tuning_launch_script_passes_the_tokenizer(tmp_path: Path) -> None:
    script = "launcher_scripts/llama/run_hf_llama3_8b_seq8k_trn1_fine_tuning.sh"
    env = {
        **os.environ,
        "PYTHON": sys.executable,
        "BASE_RESULTS_DIR": str(tmp_path / "r"),
        "TRAIN_DIR": "/fsx/sft",
        "MODEL_CONFIG": "/fsx/llama3/config.json",
        "RESUME_FROM_CHECKPOINT": "/fsx/llama3/nxd",
        "TOKENIZER_TYPE": "/fsx/llama3",
    }
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run(
        ["bash", str(root / script), "dry_run=true"],
        capture_output=True,
        text=True,
        env=env,
        cwd=root,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "warning" not in proc.stdout + proc.stderr
    (recipe_file,) = (tmp_path / "r").glob("*/*_hydra.yaml")
    recipe = yaml.safe_load(recipe_file.read_text())
    assert recipe["data"]["tokenizer"]["type"] == "/fsx/llama3"
    # The recipe checkpoints (every_n_train_steps -1 would never write one).
    assert recipe["exp_manager"]["checkpoint_callback_params"]["every_n_train_steps"] > 0
