"""Secret values never show in a repr, a str, a printed request or a traceback from submit."""

from __future__ import annotations

import dataclasses
import traceback
from pathlib import Path

import pytest

from hyperpod_launcher.backends.base import Backend, Request, Submitted
from hyperpod_launcher.launch import compose
from hyperpod_launcher.launch import execute as launch
from hyperpod_launcher.spec.job import JobSpec, Secrets
from hyperpod_launcher.util.errors import BackendError

GIT_CANARY = "ghp_canary_git_0123456789"
HF_CANARY = "hf_canary_hub_9876543210"
WANDB_CANARY = "wandb_canary_abcdef"
CANARIES = (GIT_CANARY, HF_CANARY, WANDB_CANARY)


def assert_no_canary(text: str) -> None:
    for canary in CANARIES:
        assert canary not in text, f"{canary} leaked into:\n{text}"


def test_secrets_repr_and_str_mask_every_value() -> None:
    secrets = Secrets(env={"HF_TOKEN": HF_CANARY}, git_token=GIT_CANARY)
    for text in (repr(secrets), str(secrets), f"{secrets}", f"{secrets!r}", str([secrets])):
        assert_no_canary(text)
        assert "HF_TOKEN" in text and "****" in text


def _plan(tmp_path: Path) -> launch.Plan:
    return compose.plan(
        [
            "recipes=training/llama/hf_llama3_8b_seq8k_gpu_p5x16_pretrain",
            "cluster=slurm",
            "instance_type=p5.48xlarge",
            f"base_results_dir={tmp_path}",
            f"git.token={GIT_CANARY}",
            f"recipes.model.hf_access_token={HF_CANARY}",
            f"+env_vars.WANDB_API_KEY={WANDB_CANARY}",
            "recipes.model.data.train_dir=/fsx/data/train",
        ]
    )


def test_plan_and_request_print_masked(tmp_path: Path) -> None:
    plan = _plan(tmp_path)
    assert set(plan.secrets.values()) == set(CANARIES)  # the canaries did reach the secrets
    for thing in (plan, plan.request, plan.spec):
        for text in (repr(thing), str(thing)):
            assert_no_canary(text)
    assert "submit with: sbatch --parsable" in str(plan.request)


def test_a_request_masks_a_literal_secret_that_slipped_into_it() -> None:
    rendered = Request({}, ("submit", f"HF_TOKEN={HF_CANARY}", f"--token={GIT_CANARY}"))
    assert_no_canary(str(rendered) + repr(rendered))
    assert "HF_TOKEN=${HF_TOKEN}" in str(Request({}, ("env", "HF_TOKEN=${HF_TOKEN}")))


class _LeakyBackend(Backend):
    """A backend whose submit fails with an error quoting everything it was given."""

    def __init__(self, error: type[Exception]) -> None:
        self.error = error

    def render(self, spec: JobSpec) -> Request:
        raise NotImplementedError  # the plan is rendered by the real Slurm backend

    def submit(self, request: Request, secrets: Secrets) -> Submitted:
        raise self.error(f"cannot submit with {secrets.env} and token {secrets.git_token}")


@pytest.mark.parametrize("error", [RuntimeError, BackendError])
def test_a_traceback_raised_inside_submit_is_masked(
    error: type[Exception], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = dataclasses.replace(_plan(tmp_path), backend=_LeakyBackend(error))
    spec = dataclasses.replace(plan.spec, code=dataclasses.replace(plan.spec.code, location=None))
    plan = dataclasses.replace(plan, spec=spec)
    with pytest.raises(BackendError) as caught:
        launch.execute(plan, ["main.py"], say=print)
    shown = "".join(traceback.format_exception(caught.value))
    out, err = capsys.readouterr()
    assert "cannot submit with" in str(caught.value)
    record = (Path(plan.spec.job_dir) / "job.json").read_text()
    assert "cannot submit with" in record
    for text in (shown, out, err, record, str(caught.value)):
        assert_no_canary(text)
    if error is RuntimeError:  # an unexpected error still shows where it came from
        assert "Traceback" in err and "_LeakyBackend" not in out
