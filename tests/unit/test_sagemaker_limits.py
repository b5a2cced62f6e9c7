"""SageMaker: run.time_limit becomes max_run within SageMaker's bounds, the recipe saves its
checkpoints where SageMaker syncs and restores them, and the request limits the launch checks
are CreateTrainingJob's own (rendering only; the moto suite submits, test_bad_input launches)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from hyperpod_launcher.launch.compose import plan

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
    assert the_plan.request.estimator_arguments()["max_run"] == max_run
    lines = the_plan.request.summary.splitlines()
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
    assert custom.request.estimator_arguments()["max_run"] == 7200
    explicit = render(tmp_path, *LLAMA, "recipes.run.time_limit=30-00:00:00", f"{AEK}.max_run=600")
    assert explicit.request.estimator_arguments()["max_run"] == 600
    assert len(explicit.request.summary.splitlines()) == 1


def recipe(the_plan) -> dict:
    return yaml.safe_load(the_plan.request.files["recipe.yaml"].text)


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
        tmp_path,
        *LLAMA,
        "+cluster.sm_jobs_config.recipe_overrides.exp_manager.checkpoint_dir=/opt/ml/checkpoints/x",
    )
    assert recipe(chosen)["exp_manager"]["checkpoint_dir"] == "/opt/ml/checkpoints/x"


def test_nxd_training_checkpoints_go_there_too(tmp_path: Path) -> None:
    trn = render(tmp_path, *TRN)
    params = recipe(trn)["exp_manager"]["checkpoint_callback_params"]
    assert params["dirpath"] == "/opt/ml/checkpoints"


def test_request_limits_are_the_sdk_models() -> None:
    """The limits the launch checks are those of botocore's CreateTrainingJob model."""
    import botocore.session

    from hyperpod_launcher.backends.sm_jobs import checks

    model = botocore.session.get_session().get_service_model("sagemaker")
    request = model.operation_model("CreateTrainingJob").input_shape.members
    hps, env = request["HyperParameters"], request["Environment"]
    assert hps.metadata["max"] == checks.MAX_HYPERPARAMETERS
    assert hps.key.metadata["max"] == checks.MAX_HP_KEY
    assert hps.value.metadata["max"] == checks.MAX_HP_VALUE
    assert env.metadata["max"] == checks.MAX_ENVIRONMENT
    assert env.key.metadata["max"] == checks.MAX_ENV_KEY
    assert env.key.metadata["pattern"] == "[a-zA-Z_][a-zA-Z0-9_]*"
    assert env.value.metadata["max"] == checks.MAX_ENV_VALUE
    assert request["Tags"].metadata["max"] == checks.MAX_TAGS
    name = request["TrainingJobName"].metadata
    assert f"^{name['pattern']}$" == checks.JOB_NAME.pattern and name["max"] == 63


def test_an_environment_name_over_512_characters_is_one_line() -> None:
    """(A config file can hold one; the command line takes keys of at most 200 characters.)"""
    from hyperpod_launcher.backends.sm_jobs import checks
    from hyperpod_launcher.util.errors import UserError

    with pytest.raises(UserError) as err:
        checks.request_limits({}, {"N" * 513: "1"}, None)
    assert str(err.value) == (
        "env_vars.'NNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNN...': SageMaker takes environment "
        "variable names of at most 512 characters matching [a-zA-Z_][a-zA-Z0-9_]*"
    )
    checks.request_limits({}, {"N" * 512: "x" * 512}, None)  # at the limits: accepted


@pytest.mark.parametrize("run_name", ["my_run.v2", "a" * 120, "x--y__z", "9-lives", "UPPER.case"])
def test_any_safe_run_name_becomes_a_job_name_sagemaker_takes(
    tmp_path: Path, run_name: str
) -> None:
    import botocore.session

    from hyperpod_launcher.launch.execute import new_launch_id

    model = botocore.session.get_session().get_service_model("sagemaker")
    shape = model.operation_model("CreateTrainingJob").input_shape.members["TrainingJobName"]
    pattern = re.compile(f"^{shape.metadata['pattern']}$")
    the_plan = plan(
        [
            *SM,
            f"base_results_dir={tmp_path}",
            "instance_type=ml.g5.12xlarge",
            "training_cfg.run.ntasks_per_node=null",
            f"training_cfg.run.name={run_name}",
        ],
        launch_id=new_launch_id(),
    )
    name = the_plan.request.job_name
    assert pattern.match(name) and len(name) <= shape.metadata["max"], name
    assert name.endswith(the_plan.spec.launch_id.replace("_", "-"))
