"""On a CUDA machine, through `python main.py cluster=local`: the smoke job on NCCL, the open
recipes (SFT LoRA and QLoRA, DPO LoRA), the DeepSpeed recipes, a restart, the hardware checks.

Each training test appends its loss curve and speed to $HPL_GPU_RESULTS (JSON lines) when set;
scripts/gpu_check.sh turns that into a results file.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from tests import tiny_lm
from tests.conftest import REPO, run_launcher

FAIL_ONCE = REPO / "tests" / "fixtures" / "scripts" / "open_ft_fail_once.py"
STEP = re.compile(r"\[rank0\]:open_ft step (\d+) (\{.*\})")


def gpus() -> int:
    import torch

    return torch.cuda.device_count()


def env_for(tmp_path: Path) -> dict[str, str]:
    return {
        **tiny_lm.OFFLINE_ENV,
        "HPL_STATE_DIR": str(tmp_path / "state"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
    }


def train(tmp_path: Path, name: str, recipe: str, tiny: tiny_lm.TinyLM, *extra: str) -> Path:
    proc = run_launcher(
        f"recipes={recipe}",
        "cluster=local",
        f"base_results_dir={tmp_path}",
        f"recipes.run.name={name}",
        f"recipes.trainer.devices={gpus()}",
        "recipes.trainer.num_nodes=1",
        f"recipes.model.hf_model_name_or_path={tiny.model}",
        "recipes.model.max_context_width=32",
        "recipes.model.max_position_embeddings=256",
        "recipes.trainer.log_every_n_steps=1",
        *extra,
        env=env_for(tmp_path),
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-6000:]
    logged = [json.loads(body) for _, body in STEP.findall(output)]
    losses = [row["loss"] for row in logged if "loss" in row]
    summary = next((row for row in logged if "train_runtime" in row), {})
    record(name, losses=losses, steps_per_s=summary.get("train_steps_per_second"))
    if "grpo" not in recipe:
        assert len(losses) >= 4 and losses[-1] < losses[0], losses
    return tmp_path / name


def record(test: str, **facts: object) -> None:
    path = os.environ.get("HPL_GPU_RESULTS")
    if path:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps({"test": test, **facts}) + "\n")


def assert_adapter_loads(job: Path, tiny: tiny_lm.TinyLM) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny.model)
    model = PeftModel.from_pretrained(base, job / "checkpoints" / "final")
    assert any("lora_" in name for name, _ in model.named_parameters())


def test_default_smoke_runs_one_process_per_visible_gpu_on_nccl(tmp_path: Path) -> None:
    proc = run_launcher(cwd=tmp_path, env=env_for(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"all_reduce OK: world size {gpus()}" in proc.stdout
    assert "nccl" in proc.stdout.lower()


@pytest.mark.parametrize("peft", ["lora", "qlora"])
def test_open_sft_adapter_trains_and_loads_back(
    tmp_path: Path, tiny: tiny_lm.TinyLM, peft: str
) -> None:
    job = train(
        tmp_path,
        f"sft-{peft}",
        f"fine-tuning/hf/open_causal_lm_gpu_sft_{peft}",
        tiny,
        f"recipes.model.data.train_dir={tiny.text}",
        "recipes.trainer.max_steps=20",
        "recipes.model.micro_batch_size=8",
        "recipes.model.optim.lr=1e-2",
    )
    assert_adapter_loads(job, tiny)


def test_open_dpo_lora_trains_and_loads_back(tmp_path: Path, tiny: tiny_lm.TinyLM) -> None:
    job = train(
        tmp_path,
        "dpo-lora",
        "fine-tuning/hf/open_causal_lm_gpu_dpo_lora",
        tiny,
        f"recipes.model.data.train_dir={tiny.preference}",
        "recipes.trainer.max_steps=10",
        "recipes.model.micro_batch_size=4",
        "recipes.model.optim.lr=1e-3",
    )
    assert_adapter_loads(job, tiny)


@pytest.mark.parametrize(
    "recipe",
    [
        "fine-tuning/deepspeed/hf_llama3_8b_seq8k_gpu_zero2",
        "fine-tuning/deepspeed/hf_llama3_70b_seq4k_gpu_zero3_offload",
    ],
)
def test_deepspeed_recipes_train(tmp_path: Path, tiny: tiny_lm.TinyLM, recipe: str) -> None:
    job = train(
        tmp_path,
        Path(recipe).name.replace("_", "-"),
        recipe,
        tiny,
        f"recipes.model.data.train_dir={tiny.text}",
        "recipes.trainer.max_steps=30",
        f"recipes.deepspeed.global_batch_size={8 * gpus()}",
        "recipes.deepspeed.micro_batch_size=8",
        "recipes.model.optim.lr=1e-3",
        "recipes.model.optim.warmup_steps=2",
    )
    assert (job / "checkpoints" / "final" / "config.json").is_file()


def test_restart_resumes_from_the_checkpoint(tmp_path: Path, tiny: tiny_lm.TinyLM) -> None:
    job = train(
        tmp_path,
        "restart",
        "fine-tuning/hf/open_causal_lm_gpu_sft_lora",
        tiny,
        f"recipes.model.data.train_dir={tiny.text}",
        "recipes.trainer.max_steps=8",
        "recipes.model.micro_batch_size=8",  # one row a step: too noisy for a falling loss
        "recipes.model.optim.lr=1e-2",
        "recipes.exp_manager.save_every_n_steps=4",
        f"git.entry_script={FAIL_ONCE}",
        "max_restarts=1",
    )
    log = next(job.glob("log-*.out")).read_text()
    assert "injected failure after the checkpoint of step 4" in log
    assert f"resuming from {job / 'checkpoints' / 'checkpoint-4'}" in log


def test_hardware_checks(tmp_path: Path, tiny: tiny_lm.TinyLM) -> None:
    too_many = run_launcher(
        "recipes=fine-tuning/hf/open_causal_lm_gpu_sft_lora",
        "cluster=local",
        f"base_results_dir={tmp_path / 'a'}",
        f"recipes.trainer.devices={gpus() + 1}",
        f"recipes.model.hf_model_name_or_path={tiny.model}",
        f"recipes.model.data.train_dir={tiny.text}",
        env=env_for(tmp_path),
    )
    assert too_many.returncode == 2 and too_many.stderr.startswith("error: "), too_many.stderr
    no_cuda = run_launcher(
        "recipes=fine-tuning/hf/open_causal_lm_gpu_sft_qlora",
        "cluster=local",
        f"base_results_dir={tmp_path / 'b'}",
        "recipes.trainer.devices=1",
        f"recipes.model.hf_model_name_or_path={tiny.model}",
        f"recipes.model.data.train_dir={tiny.text}",
        env={**env_for(tmp_path), "CUDA_VISIBLE_DEVICES": ""},
    )
    assert no_cuda.returncode == 2 and "QLoRA needs a CUDA GPU" in no_cuda.stderr
