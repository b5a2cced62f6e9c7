"""What the open entry trains, checked in one CPU process on models built in the test: full
fine-tuning keeps fp32 weights and optimizer states from a bf16 checkpoint, SFT's loss covers
completions and assistant turns only (R1-Distill's reasoning kept), MoE LoRA reaches the fused
experts, and GRPO's math reward rises on a tiny arithmetic task."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from hyperpod_launcher.examples import open_ft
from tests import arithmetic_task, tiny_lm
from tests.conftest import require, run_launcher

GENERIC = "fine-tuning/hf/open_causal_lm_gpu"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tiny_lm.TinyLM:
    for module in ("trl", "peft", "transformers", "datasets", "tokenizers", "torch"):
        require(importlib.util.find_spec(module) is not None, f"{module} (the [train] extra)")
    return tiny_lm.build(tmp_path_factory.mktemp("tiny-lm"))


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in tiny_lm.OFFLINE_ENV.items():
        monkeypatch.setenv(name, value)
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "SM_MODEL_DIR"):
        monkeypatch.delenv(name, raising=False)


def job_folder(tmp_path: Path, recipe: str, model: Path, data: Path, *extra: str) -> Path:
    """The job folder a dry run of `recipe` on this machine writes (with its resolved recipe)."""
    proc = run_launcher(
        f"recipes={GENERIC}_{recipe}",
        "cluster=local",
        "dry_run=true",
        f"base_results_dir={tmp_path / 'results'}",
        "recipes.run.name=learn",
        "recipes.trainer.devices=1",
        f"recipes.model.hf_model_name_or_path={model}",
        f"recipes.model.data.train_dir={data}",
        "recipes.model.max_context_width=64",
        "recipes.trainer.log_every_n_steps=1",
        "recipes.exp_manager.save_every_n_steps=0",
        "recipes.exp_manager.tensorboard=false",
        *extra,
        env={"HPL_STATE_DIR": str(tmp_path / "state"), "XDG_CACHE_HOME": str(tmp_path / "c")},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return tmp_path / "results" / "learn"


def recipe_of(job: Path, *overrides: str) -> dict[str, Any]:
    return open_ft.load_recipe(str(job), "learn_hydra.yaml", overrides)


def bf16_copy(tiny: tiny_lm.TinyLM, target: Path) -> Path:
    """The tiny model saved in bf16, as hub checkpoints are."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    AutoModelForCausalLM.from_pretrained(tiny.model, dtype=torch.float32).to(
        torch.bfloat16
    ).save_pretrained(target)
    AutoTokenizer.from_pretrained(tiny.model).save_pretrained(target)
    assert json.loads((target / "config.json").read_text())["dtype"] == "bfloat16"
    return target


def test_full_fine_tuning_keeps_fp32_weights_and_optimizer_states(
    tmp_path: Path, tiny: tiny_lm.TinyLM
) -> None:
    import torch
    from transformers import TrainerCallback

    model_dir = bf16_copy(tiny, tmp_path / "bf16")
    job = job_folder(tmp_path, "sft", model_dir, tiny.text)
    seen: dict[str, Any] = {}

    class AfterFirstStep(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            optimizer = kw["optimizer"]
            seen["params"] = {p.dtype for p in kw["model"].parameters()}
            seen["states"] = {
                t.dtype
                for s in optimizer.state.values()
                for t in s.values()
                if torch.is_tensor(t) and t.dim() > 0
            }
            seen["fused"] = any(g.get("fused") for g in optimizer.param_groups)

    recipe = recipe_of(job, "trainer.max_steps=1", "model.micro_batch_size=2")
    trainer, _ = open_ft.build_trainer(recipe, str(job), [AfterFirstStep()])
    before = next(trainer.model.parameters()).detach().clone()
    trainer.train()
    assert seen["params"] == {torch.float32} and seen["states"] == {torch.float32}, seen
    assert seen["fused"]  # the recipe's default optimizer is fused AdamW
    # A 2e-5 update moves the weights (in bf16 most such updates round away).
    assert not torch.equal(before, next(trainer.model.parameters()).detach())

    # FSDP loads fp32 too (its master weights); DeepSpeed loads 16-bit where CUDA runs bf16
    # and keeps its fp32 master copy in the optimizer (on CPU everything is fp32).
    sixteen = torch.bfloat16 if torch.cuda.is_available() else torch.float32
    for strategy, dtype in (("fsdp", torch.float32), ("deepspeed", sixteen)):
        other = recipe_of(job, f"model.strategy={strategy}")
        assert open_ft.load_dtype(other) == dtype
        assert {p.dtype for p in open_ft.load_model(other).parameters()} == {dtype}
    lora = recipe_of(job, "model.peft.peft_type=lora")
    assert open_ft.load_dtype(lora) == sixteen  # a frozen LoRA base needs no fp32 copy


def test_sft_trains_on_completions_and_assistant_turns_only(
    tmp_path: Path, tiny: tiny_lm.TinyLM
) -> None:
    rows = [{"prompt": "the cat", "completion": " sat on a mat"}] * 8
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps(r) + "\n" for r in rows))
    job = job_folder(tmp_path, "sft", tiny.model, pairs)
    trainer, _ = open_ft.build_trainer(recipe_of(job), str(job))
    sample = trainer.train_dataset[0]
    prompt_len = len(trainer.processing_class("the cat")["input_ids"])
    labels = trainer.data_collator([sample])["labels"][0]
    assert (labels[:prompt_len] == -100).all()  # no loss on the prompt
    assert (labels[prompt_len:] != -100).any()  # the completion's

    # Chat rows with a template that marks the assistant turns: assistant-only loss.
    marked = tmp_path / "marked.jinja"
    marked.write_text(
        "{% for m in messages %}{{ m['role'] }}: {% if m['role'] == 'assistant' %}"
        "{% generation %}{{ m['content'] }}{{ eos_token }}{% endgeneration %}"
        "{% else %}{{ m['content'] }}{{ eos_token }}{% endif %}\n{% endfor %}"
    )
    chat = recipe_of(job, f"model.data.train_dir={tiny.chat}", f"model.chat_template={marked}")
    trainer, _ = open_ft.build_trainer(chat, str(job))
    assert trainer.args.assistant_only_loss
    labels = trainer.data_collator([trainer.train_dataset[0]])["labels"][0]
    assert 0 < int((labels != -100).sum()) < len(labels)
    # Opted out: every token.
    trainer, _ = open_ft.build_trainer(
        {**chat, "model": {**chat["model"], "completion_only_loss": False}}, str(job)
    )
    assert not trainer.args.assistant_only_loss and trainer.args.completion_only_loss is False


def test_r1_distill_chat_keeps_the_reasoning_it_trains_on(
    tmp_path: Path, tiny: tiny_lm.TinyLM
) -> None:
    from trl.chat_template_utils import deepseek_r1_distill_chat_template

    template = tmp_path / "r1.jinja"
    template.write_text(deepseek_r1_distill_chat_template)
    rows = [
        {
            "messages": [
                {"role": "user", "content": "red box"},
                {"role": "assistant", "content": "<think>\nthe cat sat\n</think>\n\nblue dog"},
            ]
        }
    ] * 4
    chat = tmp_path / "r1.jsonl"
    chat.write_text("".join(json.dumps(r) + "\n" for r in rows))
    job = job_folder(tmp_path, "sft", tiny.model, chat, f"recipes.model.chat_template={template}")
    trainer, _ = open_ft.build_trainer(recipe_of(job), str(job))
    assert trainer.args.assistant_only_loss  # TRL's R1 training template stands in
    labels = trainer.data_collator([trainer.train_dataset[0]])["labels"][0]
    text = trainer.processing_class.decode(labels[labels != -100])
    assert "the cat sat" in text and "blue dog" in text  # the reasoning is trained, not cut


def test_moe_lora_reaches_the_fused_experts(tmp_path: Path) -> None:
    import torch
    from peft import get_peft_model
    from transformers import Qwen3MoeConfig, Qwen3MoeForCausalLM

    config = Qwen3MoeConfig(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=64,
        moe_intermediate_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        num_experts=4,
        num_experts_per_tok=2,
    )
    model = Qwen3MoeForCausalLM(config).to(torch.float32)
    recipe = {
        "model": {
            "peft": {
                "peft_type": "lora",
                "target_parameters": ["mlp.experts.gate_up_proj", "mlp.experts.down_proj"],
                "dropout": 0.0,
            }
        }
    }
    adapted = get_peft_model(model, open_ft.peft_config(recipe))
    with pytest.raises(open_ft.RecipeError, match="takes no dropout"):
        open_ft.peft_config({"model": {"peft": {**recipe["model"]["peft"], "dropout": 0.05}}})
    trainable = [n for n, p in adapted.named_parameters() if p.requires_grad]
    assert any("experts" in n and "lora" in n for n in trainable), trainable
    adapted(torch.tensor([[1, 2, 3]])).logits.sum().backward()  # the expert adapters train
    grads = [p.grad for n, p in adapted.named_parameters() if "experts" in n and p.requires_grad]
    assert grads and all(g is not None for g in grads)


def grpo_rewards(tmp_path: Path, steps: int = 24) -> list[float]:
    """GRPO (full weights, math_answer) on two one-digit sums: the mean reward of each step."""
    from transformers import TrainerCallback

    model_dir, sums = arithmetic_task.build(tmp_path / "task", problems=2)
    job = job_folder(tmp_path, "grpo_lora", model_dir, sums, "recipes.model.max_context_width=16")
    rewards: list[float] = []

    class Rewards(TrainerCallback):
        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **_: Any) -> None:
            if logs and "reward" in logs:
                rewards.append(logs["reward"])

    recipe = recipe_of(
        job,
        "model.peft.peft_type=null",  # full weights: the tiny model learns fastest
        "method.grpo.reward_funcs=[math_answer]",
        "method.grpo.num_generations=16",
        "method.grpo.max_completion_length=2",
        "model.micro_batch_size=32",
        "model.gradient_accumulation_steps=1",
        "model.optim.lr=3e-2",
        "model.optim.scheduler=constant",
        f"trainer.max_steps={steps}",
    )
    trainer, _ = open_ft.build_trainer(recipe, str(job), [Rewards()])
    trainer.train()
    assert len(rewards) == steps
    return rewards


def test_grpo_math_reward_rises_on_arithmetic(tmp_path: Path) -> None:
    rewards = grpo_rewards(tmp_path)
    # The untrained model is right about 1 time in 30; it learns within a few steps, so only the
    # first four steps show the start (the curve is noisy at this learning rate).
    first, last = sum(rewards[:4]) / 4, sum(rewards[-8:]) / 8
    assert last > first + 0.15, rewards
