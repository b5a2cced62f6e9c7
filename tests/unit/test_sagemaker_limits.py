"""SageMaker: run.time_limit becomes max_run within SageMaker's bounds, and the recipe saves its
checkpoints where SageMaker syncs and restores them (rendering only; the moto suite submits)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from hyperpod_launcher.compose import plan

SM = (
    "cluster=sm_jobs",
    "cluster.sm_jobs_config.output_path=s3://bucket/jobs",
    "cluster.sm_jobs_config.role=arn:aws:iam::123456789012:role/r",
)
LLAMA = (
    "recipes=training/llama/hf_llama3_8b_seq8k_gpu_p5x16_pretrain",
    "instance_type=ml.p5.48xlarge",
)
TRN = (
    "recipes=training/llama/hf_llama3_8b_seq8k_trn1x4_pretrain",
    "instance_type=ml.trn1.32xlarge",
)
AEK = "+cluster.sm_jobs_config.additional_estimator_kwargs"


def render(tmp_path: Path, *overrides: str):
    return plan([*SM, f"base_results_dir={tmp_path}", *overrides])


@pytest.mark.parametrize(
    ("time_limit", "max_run", "note"),
    [
        ("3-00:00:00", 259200, None),
        ("90", 5400, None),
        ("28-00:00:00", 2419200, None),
        ("30-00:00:00", 2419200, "(2592000 s)"),
        ("UNLIMITED", 2419200, "(no limit)"),
    ],
)
def test_time_limit_is_max_run_within_bounds(
    tmp_path: Path, time_limit: str, max_run: int, note: str | None
) -> None:
    the_plan = render(tmp_path, *LLAMA, f"recipes.run.time_limit={time_limit}")
    assert the_plan.backend.estimator_arguments(the_plan.spec)["max_run"] == max_run
    lines = the_plan.rendered.summary.splitlines()
    if note is None:
        assert len(lines) == 1
    else:
        assert lines[1] == (
            f"warning: run.time_limit={time_limit} {note} is beyond SageMaker's maximum run time "
            "of 28 days (MaxRuntimeInSeconds 1-2419200); max_run=2419200"
        )


def test_custom_scripts_time_limit_too_and_an_explicit_max_run_wins(tmp_path: Path) -> None:
    custom = render(
        tmp_path,
        "instance_type=ml.g5.12xlarge",
        "training_cfg.run.ntasks_per_node=null",
        "+training_cfg.run.time_limit=02:00:00",
    )
    assert custom.backend.estimator_arguments(custom.spec)["max_run"] == 7200
    explicit = render(tmp_path, *LLAMA, "recipes.run.time_limit=30-00:00:00", f"{AEK}.max_run=600")
    assert explicit.backend.estimator_arguments(explicit.spec)["max_run"] == 600
    assert len(explicit.rendered.summary.splitlines()) == 1


def recipe(the_plan) -> dict:
    return yaml.safe_load(the_plan.rendered.files["recipe.yaml"].text)


def test_checkpoints_go_where_sagemaker_syncs_them(tmp_path: Path) -> None:
    default = render(tmp_path, *LLAMA, f"{AEK}.checkpoint_s3_uri=s3://bucket/ckpt")
    assert recipe(default)["exp_manager"]["checkpoint_dir"] == "/opt/ml/checkpoints"
    local = render(
        tmp_path,
        *LLAMA,
        f"{AEK}.checkpoint_s3_uri=s3://bucket/ckpt",
        f"{AEK}.checkpoint_local_path=/opt/ml/ckpt",
    )
    assert recipe(local)["exp_manager"]["checkpoint_dir"] == "/opt/ml/ckpt"
    # Without checkpoint_s3_uri too: SageMaker's own folder, not a path of the submit host.
    plain = render(tmp_path, *LLAMA, "recipes.exp_manager.checkpoint_dir=/fsx/ckpt")
    assert recipe(plain)["exp_manager"]["checkpoint_dir"] == "/opt/ml/checkpoints"
    chosen = render(
        tmp_path, *LLAMA, "+cluster.sm_jobs_config.recipe_overrides.exp_manager.checkpoint_dir=/x"
    )
    assert recipe(chosen)["exp_manager"]["checkpoint_dir"] == "/x"


def test_nxd_training_checkpoints_go_there_too(tmp_path: Path) -> None:
    trn = render(tmp_path, *TRN)
    params = recipe(trn)["exp_manager"]["checkpoint_callback_params"]
    assert params["dirpath"] == "/opt/ml/checkpoints"
