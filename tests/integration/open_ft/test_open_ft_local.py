"""The open fine-tuning recipes train for real on CPU: `python main.py cluster=local` runs the
shipped entry (TRL + PEFT + Transformers) under torchrun with 2 gloo processes on a tiny model."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest

from tests import tiny_lm
from tests.conftest import REPO, require, run_launcher

GENERIC = "fine-tuning/hf/open_causal_lm_gpu"
FAIL_ONCE = REPO / "tests" / "fixtures" / "scripts" / "open_ft_fail_once.py"
STEP_LINE = re.compile(r"^\[rank0\]:open_ft step (\d+) (\{.*\})$", re.MULTILINE)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tiny_lm.TinyLM:
    for module in ("trl", "peft", "transformers", "datasets", "tokenizers", "torch"):
        require(importlib.util.find_spec(module) is not None, f"{module} (the [train] extra)")
    return tiny_lm.build(tmp_path_factory.mktemp("tiny-lm"))


def launch(tmp_path: Path, recipe: str, tiny: tiny_lm.TinyLM, *overrides: str) -> tuple[str, Path]:
    """Run the recipe on 2 local processes; return its output and the job folder."""
    proc = run_launcher(
        f"recipes=fine-tuning/hf/{recipe}",
        "cluster=local",
        f"base_results_dir={tmp_path / 'results'}",
        "recipes.run.name=tiny",
        "recipes.trainer.devices=2",
        "cpu_processes=2",  # no GPU here: the recipe's 2 processes run on the CPU
        f"recipes.model.hf_model_name_or_path={tiny.model}",
        "recipes.model.max_context_width=32",
        "recipes.model.micro_batch_size=4",
        "recipes.model.gradient_checkpointing=false",
        "recipes.trainer.log_every_n_steps=1",
        "recipes.exp_manager.save_every_n_steps=0",
        *overrides,
        env={
            **tiny_lm.OFFLINE_ENV,
            "HPL_STATE_DIR": str(tmp_path / "state"),
            "XDG_CACHE_HOME": str(tmp_path / "cache"),
        },
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-6000:]
    return output, tmp_path / "results" / "tiny"


def steps(output: str) -> list[tuple[int, dict[str, float]]]:
    """The metrics rank 0 logged at each optimizer step (the run's summary line excluded)."""
    rows = [(int(step), json.loads(body)) for step, body in STEP_LINE.findall(output)]
    return [(step, logs) for step, logs in rows if "loss" in logs]  # the summary: train_loss


def assert_loss_falls(output: str) -> None:
    losses = [logs["loss"] for _, logs in steps(output)]
    assert len(losses) >= 4, losses
    assert all(loss == loss and loss < float("inf") for loss in losses), losses  # finite
    assert sum(losses[-2:]) < sum(losses[:2]), losses


def test_sft_full_weights_trains_saves_and_resumes_after_a_failed_attempt(
    tmp_path: Path, tiny: tiny_lm.TinyLM
) -> None:
    output, job = launch(
        tmp_path,
        "open_causal_lm_gpu_sft",
        tiny,
        f"recipes.model.data.train_dir={tiny.text}",
        "recipes.trainer.max_steps=6",
        "recipes.model.optim.lr=3e-3",
        "recipes.exp_manager.save_every_n_steps=3",
        f"git.entry_script={FAIL_ONCE}",
        "max_restarts=1",
    )
    assert "injected failure after the checkpoint of step 3" in output
    assert "attempt 1 failed with exit status" in output
    checkpoint = job / "checkpoints" / "checkpoint-3"
    assert f"open_ft: attempt 2, resuming from {checkpoint}" in output, [
        line for line in output.splitlines() if "open_ft: attempt" in line
    ]
    logged = [step for step, _ in steps(output)]
    assert logged[-3:] == [4, 5, 6], [x for x in output.splitlines() if "open_ft step" in x][:4]
    assert_loss_falls(output)
    final = job / "checkpoints" / "final"
    assert (final / "model.safetensors").is_file() and (final / "tokenizer.json").is_file()
    state = json.loads((job / "checkpoints" / "trainer_state.json").read_text())
    assert state["global_step"] == 6
    assert "None" not in str(list(job.rglob("*")))


def test_sft_lora_on_conversations_with_the_recipe_chat_template_saves_an_adapter(
    tmp_path: Path, tiny: tiny_lm.TinyLM
) -> None:
    output, job = launch(
        tmp_path,
        "open_causal_lm_gpu_sft_lora",
        tiny,
        f"recipes.model.data.train_dir={tiny.chat}",
        f"recipes.model.chat_template={tiny.chat_template}",
        "recipes.trainer.max_steps=6",
        "recipes.model.optim.lr=3e-2",
        "recipes.model.peft.merge_on_save=true",
    )
    assert_loss_falls(output)
    final = job / "checkpoints" / "final"
    config = json.loads((final / "adapter_config.json").read_text())
    assert config["peft_type"] == "LORA" and config["r"] == 16
    assert (final / "adapter_model.safetensors").is_file()
    assert not (final / "model.safetensors").exists()  # the adapter only, not the base
    assert (job / "checkpoints" / "merged" / "model.safetensors").is_file()


def test_dpo_lora_logs_preference_metrics(tmp_path: Path, tiny: tiny_lm.TinyLM) -> None:
    output, job = launch(
        tmp_path,
        "open_causal_lm_gpu_dpo_lora",
        tiny,
        f"recipes.model.data.train_dir={tiny.preference}",
        "recipes.trainer.max_steps=3",
        "recipes.model.optim.lr=1e-3",
    )
    logged = steps(output)
    assert [step for step, _ in logged] == [1, 2, 3]
    assert all("rewards/margins" in logs and "rewards/accuracies" in logs for _, logs in logged)
    assert (job / "checkpoints" / "final" / "adapter_model.safetensors").is_file()


def test_grpo_lora_scores_generations_with_the_built_in_rewards(
    tmp_path: Path, tiny: tiny_lm.TinyLM
) -> None:
    output, job = launch(
        tmp_path,
        "open_causal_lm_gpu_grpo_lora",
        tiny,
        f"recipes.model.data.train_dir={tiny.prompts}",
        "recipes.trainer.max_steps=2",
        "recipes.model.micro_batch_size=2",
        "recipes.method.grpo.reward_funcs=[format,exact_match]",
        "recipes.method.grpo.num_generations=4",
        "recipes.method.grpo.max_completion_length=6",
    )
    logged = steps(output)
    assert [step for step, _ in logged] == [1, 2]
    for _, logs in logged:
        assert "rewards/format_reward/mean" in logs and "rewards/exact_match_reward/mean" in logs
        assert 0.0 <= logs["reward"] <= 2.0
    assert (job / "checkpoints" / "final" / "adapter_model.safetensors").is_file()
