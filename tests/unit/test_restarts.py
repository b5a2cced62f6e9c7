"""One `max_restarts` across backends: what it becomes on Kubernetes and SageMaker."""

from __future__ import annotations

import pytest

from hyperpod_launcher.launch.compose import plan
from hyperpod_launcher.util.errors import UserError

SM = (
    "cluster=sm_jobs",
    "instance_type=ml.g5.12xlarge",
    "training_cfg.run.ntasks_per_node=null",
    "cluster.sm_jobs_config.output_path=s3://bucket/jobs",
    "cluster.sm_jobs_config.role=arn:aws:iam::123456789012:role/r",
)


def test_sm_jobs_max_restarts_is_the_estimator_retry_count() -> None:
    the_plan = plan([*SM, "max_restarts=2"])
    assert the_plan.request.estimator_arguments()["max_retry_attempts"] == 2
    plain = plan(list(SM))
    assert "max_retry_attempts" not in plain.request.estimator_arguments()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ("max_restarts=31",),
            "max_restarts=31: SageMaker retries a training job at most 30 times",
        ),
        (
            ("+cluster.sm_jobs_config.additional_estimator_kwargs.max_retry_attempts=2",),
            "additional_estimator_kwargs.max_retry_attempts: set by the launcher; "
            "set the top-level max_restarts instead",
        ),
    ],
)
def test_sm_jobs_retry_count_has_one_knob(overrides: tuple[str, ...], message: str) -> None:
    with pytest.raises(UserError) as err:
        plan([*SM, *overrides])
    assert message in str(err.value)
