"""On a CUDA machine: GRPO's reward rises on the arithmetic task, completion-only SFT trains
through the launcher, and a relaunch resumes only a checkpoint of the same run."""

from __future__ import annotations

import json
import re
from pathlib import Path

from test_gpu_suite import env_for, gpus, record, train

from tests import tiny_lm
from tests.conftest import run_launcher
from tests.integration.open_ft.test_open_ft_learning import grpo_rewards

SFT = "fine-tuning/hf/open_causal_lm_gpu_sft"


def test_grpo_reward_rises_on_arithmetic(tmp_path: Path) -> None:
    rewards = grpo_rewards(tmp_path, steps=30)
    record("grpo-arithmetic", rewards=[round(r, 3) for r in rewards])
    assert sum(rewards[-8:]) / 8 > sum(rewards[:8]) / 8 + 0.15, rewards


def test_completion_only_sft_trains(tmp_path: Path, tiny: tiny_lm.TinyLM) -> None:
    pairs = tmp_path / "pairs.jsonl"
    halves = [json.loads(line)["text"].split(" ", 2) for line in tiny.text.open()]
    pairs.write_text(
        "".join(
            json.dumps({"prompt": " ".join(h[:2]), "completion": " " + h[2]}) + "\n" for h in halves
        )
    )
    job = train(
        tmp_path,
        "sft-completion",
        SFT,
        tiny,
        f"recipes.model.data.train_dir={pairs}",
        "recipes.trainer.max_steps=20",
        "recipes.model.micro_batch_size=8",
        "recipes.model.optim.lr=1e-3",
    )
    assert (job / "checkpoints" / "final" / "model.safetensors").is_file()


def test_relaunch_resumes_only_the_same_run(tmp_path: Path, tiny: tiny_lm.TinyLM) -> None:
    def launch(*extra: str) -> str:
        proc = run_launcher(
            "recipes=fine-tuning/hf/open_causal_lm_gpu_sft_lora",
            "cluster=local",
            f"base_results_dir={tmp_path / 'results'}",
            "recipes.run.name=same",
            f"recipes.trainer.devices={gpus()}",
            f"recipes.model.hf_model_name_or_path={tiny.model}",
            f"recipes.model.data.train_dir={tiny.text}",
            f"recipes.exp_manager.exp_dir={tmp_path / 'exp'}",
            "recipes.exp_manager.save_every_n_steps=4",
            "recipes.model.max_context_width=32",
            "recipes.trainer.log_every_n_steps=1",
            *extra,
            env=env_for(tmp_path),
        )
        return f"rc={proc.returncode}\n{proc.stdout}{proc.stderr}"

    checkpoints = tmp_path / "exp" / "same" / "checkpoints"
    first = launch("recipes.trainer.max_steps=4")
    assert first.startswith("rc=0"), first[-3000:]
    assert (checkpoints / "checkpoint-4" / "run_identity.json").is_file()
    changed = launch("recipes.trainer.max_steps=8", "recipes.model.optim.lr=1e-3")
    assert not changed.startswith("rc=0") and "belongs to another run" in changed, changed[-3000:]
    assert not (checkpoints / "checkpoint-8").exists()  # it trained nothing
    longer = launch("recipes.trainer.max_steps=8")
    assert longer.startswith("rc=0"), longer[-3000:]
    assert re.search(rf"resuming from {checkpoints}/checkpoint-4", longer)
    assert (checkpoints / "checkpoint-8" / "run_identity.json").is_file()
