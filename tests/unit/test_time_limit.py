"""run.time_limit: one parser for every backend (sbatch's forms, in seconds for the others)."""

from __future__ import annotations

import pytest

from hyperpod_launcher.config.time_limit import normalize, time_limit_seconds
from hyperpod_launcher.util.errors import UserError

SECONDS = {
    "90": 90 * 60,  # minutes
    "1:30": 90,  # minutes:seconds
    "04:00:00": 4 * 3600,  # hours:minutes:seconds
    "3-": 3 * 86400,  # days-
    "2-00": 2 * 86400,  # days-hours
    "1-12": 86400 + 12 * 3600,
    "1-12:30": 86400 + 12 * 3600 + 30 * 60,  # days-hours:minutes
    "2-00:00:05": 2 * 86400 + 5,  # days-hours:minutes:seconds
    90: 90 * 60,  # YAML integers are minutes too
}
NO_LIMIT = (None, 0, "0", "UNLIMITED", "unlimited", "Infinite")
REJECTED = ("forever", "1:2:3:4", "-1", "1.5", "", "1h", "-2", True, 1.5)


@pytest.mark.parametrize("value", SECONDS)
def test_every_sbatch_form_converts_to_seconds(value: object) -> None:
    assert time_limit_seconds(value) == SECONDS[value]


@pytest.mark.parametrize("value", NO_LIMIT)
def test_unset_zero_and_unlimited_mean_no_limit(value: object) -> None:
    assert time_limit_seconds(value) is None


def test_unlimited_is_passed_to_sbatch_in_one_spelling() -> None:
    assert normalize("infinite", "k") == normalize("UNLIMITED", "k") == "UNLIMITED"
    assert normalize(" 04:00:00 ", "k") == "04:00:00"


@pytest.mark.parametrize("value", REJECTED)
def test_other_forms_are_one_line_naming_key_value_and_forms(value: object) -> None:
    with pytest.raises(UserError) as err:
        normalize(value, "recipes.run.time_limit")
    message = str(err.value)
    assert message.startswith(f"recipes.run.time_limit={value!r}: expected a time limit")
    assert "D-H:M:S" in message and "UNLIMITED" in message and "\n" not in message


NEMO = (
    "recipes=training/llama/megatron_llama3_1_8b_nemo",
    "container=nvcr.io/nvidia/nemo:24.07",
    "cluster=slurm",
)


def test_a_limit_before_the_first_checkpoint_warns_with_both_numbers(tmp_path) -> None:
    from tests.conftest import run_launcher

    proc = run_launcher(*NEMO, f"base_results_dir={tmp_path}", "dry_run=true")
    assert proc.returncode == 0, proc.stderr
    (line,) = [x for x in proc.stdout.splitlines() if x.startswith("warning: run.time_limit")]
    assert line.startswith(
        "warning: run.time_limit=0-01:30:00 (5400 s) ends before the first checkpoint at step "
        "2000 (about "
    )
    fit = int(line.split("about ")[2].split(" steps fit")[0])
    assert 0 < fit < 2000
    # Checkpointing within the limit (or a longer limit) is quiet.
    for fix in ("recipes.trainer.val_check_interval=100", "recipes.run.time_limit=4-00:00:00"):
        proc = run_launcher(*NEMO, f"base_results_dir={tmp_path}", "dry_run=true", fix)
        assert proc.returncode == 0 and "warning: run.time_limit" not in proc.stdout, fix


def test_without_a_way_to_resume_it_is_an_error() -> None:
    from hyperpod_launcher import stacks
    from hyperpod_launcher.config.time_limit import before_first_checkpoint

    recipe = {
        "exp_manager": {"checkpoint_callback_params": {"every_n_train_steps": 5000}},
        "model": {
            "num_hidden_layers": 32, "hidden_size": 4096, "intermediate_size": 14336,
            "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 128256,
            "train_batch_size": 1, "max_context_width": 8192,
        },
    }  # fmt: skip
    args = ("0:30:00", recipe, stacks.get("adapter").step_facts, 8, "H100")
    assert "step 5000" in (before_first_checkpoint(*args, resumes=True) or "")
    with pytest.raises(UserError, match=r"\(1800 s\) .* step 5000 .* cannot resume"):
        before_first_checkpoint(*args, resumes=False)
    assert before_first_checkpoint("4-00:00:00", *args[1:], resumes=False) is None
