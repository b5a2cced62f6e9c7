"""Open fine-tuning: method, PEFT keys that fit it, GRPO generations that divide the
generation batch; QLoRA needs CUDA. With DeepSpeed: train batch = micro batch x gradient
accumulation x data parallel (ds_config). Its entry puts its outputs under the job folder and
resumes from there by itself."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hyperpod_launcher.stacks import checks
from hyperpod_launcher.stacks import deepspeed_config as ds_config
from hyperpod_launcher.stacks.base import Layout, NeedsCuda, Recipe, Stack
from hyperpod_launcher.stacks.resume import Resume, itself
from hyperpod_launcher.util.dotted import get as _get
from hyperpod_launcher.util.errors import UserError

NAME = "open"
OFFLOAD = {"optimizer": "optimizer state", "param": "parameters"}
OPEN_METHODS = ("sft", "dpo", "grpo")


def _peft(recipe: Mapping[str, Any]) -> str | None:
    """The PEFT type; PEFT keys on a full-weights recipe do not fit it (the schema has the
    types and values)."""
    peft = _get(recipe, "model.peft") or {}
    kind = peft.get("peft_type")
    for key, value in peft.items():
        if kind is None and key != "peft_type" and value is not None:
            raise UserError(
                f"recipes.model.peft.{key}={checks.fmt(value)}: PEFT keys need "
                "recipes.model.peft.peft_type=lora or qlora (this recipe trains full weights)"
            )
    if kind == "qlora" and peft.get("merge_on_save"):
        raise UserError(
            "recipes.model.peft.merge_on_save=true: a 4-bit QLoRA base cannot take merged "
            "weights; merge the saved adapter into the bf16 base afterwards"
        )
    return kind


def layout(recipe: Mapping[str, Any], nodes: int, devices: int) -> Layout:
    world = nodes * devices
    method = _get(recipe, "method.name", "sft")
    for other in OPEN_METHODS:
        if other != method and _get(recipe, f"method.{other}") is not None:
            raise UserError(
                f"recipes.method.{other}: {other} settings do not fit recipes.method.name="
                f"{method}; remove them"
            )
    peft = _peft(recipe)
    strategy = _get(recipe, "model.strategy", "ddp")
    if (strategy == "deepspeed") != isinstance(recipe.get("deepspeed"), Mapping):
        raise UserError(
            f"recipes.model.strategy={strategy}: the `deepspeed` section goes with strategy "
            "deepspeed only (its ds_config.json sets batch sizes and ZeRO)"
        )
    if peft == "qlora" and strategy != "ddp":
        raise UserError(
            f"recipes.model.strategy={strategy}: QLoRA runs with ddp (one 4-bit base per GPU)"
        )
    notes = [strategy]
    if strategy == "deepspeed":
        if _get(recipe, "trainer.max_steps", -1) <= 0:
            raise UserError(
                "recipes.trainer.max_steps=-1: DeepSpeed's schedule needs a step count; "
                "set recipes.trainer.max_steps"
            )
        ds_config.check(recipe, world)
        micro, accum, total = ds_config.batch(recipe, world)
        section = recipe.get("deepspeed") or {}
        notes[-1] = f"ZeRO-{section.get('zero_stage')}"
        offload = [w for k, w in OFFLOAD.items() if section.get(f"offload_{k}")]
        if offload:
            notes.append("CPU offload of " + " and ".join(offload))
    else:
        micro = checks.degree(recipe, "model.micro_batch_size")
        accum = checks.degree(recipe, "model.gradient_accumulation_steps")
        total = micro * accum * world
        if strategy == "fsdp":
            notes[-1] = "FSDP full shard" + (
                " + CPU offload" if _get(recipe, "model.fsdp.cpu_offload") else ""
            )
    if method == "grpo":
        generations = checks.degree(recipe, "method.grpo.num_generations")
        if generations < 2 or total % generations:
            raise UserError(
                f"recipes.method.grpo.num_generations={generations}: must be at least 2 and "
                f"divide the generation batch {total} (micro batch {micro} x accumulation "
                f"{accum} x {world} processes)"
            )
    notes.append(f"global batch {total} = micro {micro} x accumulation {accum} x DP {world}")
    return Layout(NAME, world, {"DP": world}, tuple(notes))


def _check_inputs(recipe: Mapping[str, Any]) -> None:
    """The model to start from and the training data (the catalog leaves both to the user)."""
    model = _get(recipe, "model.hf_model_name_or_path")
    if model is None or not str(model).strip():
        raise UserError(
            f"recipes.model.hf_model_name_or_path={checks.fmt(model)}: name a Hugging Face "
            "model id or a path (HF_MODEL_NAME_OR_PATH in the launch scripts)"
        )
    if not (_get(recipe, "model.data.train_dir") or _get(recipe, "model.data.train_channel")):
        raise UserError(
            "recipes.model.data.train_dir=null: name a .json/.jsonl/.parquet file or a folder "
            "of them (or recipes.model.data.train_channel on SageMaker)"
        )


def check(recipe: Recipe) -> None:
    checks.check_sequence(recipe, "model.max_context_width", "model.max_position_embeddings")
    checks.check_data(recipe, ("model.data.train_dir", "model.data.val_dir"))
    _check_inputs(recipe)


def resume(recipe: Recipe) -> Resume:
    return itself(NAME)


def method(recipe: Recipe) -> str:
    return str(_get(recipe, "method.name", "sft"))


STACK = Stack(
    name=NAME,
    schema="hyperpod_launcher.stacks.open.schema:OpenRecipe",
    layout=layout,
    check=check,
    needs_cuda=NeedsCuda("model.peft.peft_type", "qlora", "QLoRA", "lora"),
    resume=resume,
    checkpoint_key="exp_manager.checkpoint_dir",
    writes_job_folder=True,
    method=method,
)
