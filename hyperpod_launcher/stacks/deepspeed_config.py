"""The DeepSpeed config (ds_config.json) generated from a DeepSpeed recipe's `deepspeed` section.

DeepSpeed requires train_batch_size = micro batch per GPU x gradient accumulation steps x data
parallel size; with ZeRO there is no tensor or pipeline parallelism, so data parallel = world.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from hyperpod_launcher.config.rules import Count
from hyperpod_launcher.config.validate import check_value
from hyperpod_launcher.util.errors import UserError

PRECISIONS = ("bf16", "fp16", "fp32")
KEY = "recipes.deepspeed"


def is_deepspeed(recipe: Mapping[str, Any]) -> bool:
    run = recipe.get("run") or {}
    return run.get("model_type") == "deepspeed" or isinstance(recipe.get("deepspeed"), Mapping)


def _positive(section: Mapping[str, Any], key: str) -> int:
    return check_value(section.get(key), Count, f"{KEY}.{key}")


def batch(recipe: Mapping[str, Any], world: int) -> tuple[int, int, int]:
    """(micro batch per GPU, gradient accumulation steps, train batch), checked for identity."""
    section = recipe.get("deepspeed") or {}
    micro = _positive(section, "micro_batch_size")
    total = _positive(section, "global_batch_size")
    accum = section.get("gradient_accumulation_steps")
    if accum is None:
        if total % (micro * world):
            raise UserError(
                f"{KEY}.global_batch_size={total}: must be a multiple of micro_batch_size {micro} "
                f"x data parallel size {world} = {micro * world} (DeepSpeed: train batch = micro "
                "batch x gradient accumulation x data parallel)"
            )
        return micro, total // (micro * world), total
    accum = _positive(section, "gradient_accumulation_steps")
    if micro * accum * world != total:
        raise UserError(
            f"{KEY}.global_batch_size={total}: DeepSpeed needs train batch = micro_batch_size "
            f"{micro} x gradient_accumulation_steps {accum} x data parallel size {world} = "
            f"{micro * accum * world}"
        )
    return micro, accum, total


def check(recipe: Mapping[str, Any], world: int) -> None:
    section = recipe.get("deepspeed") or {}
    stage = section.get("zero_stage")
    if stage not in (0, 1, 2, 3) or isinstance(stage, bool):
        raise UserError(f"{KEY}.zero_stage={stage!r}: must be 0, 1, 2 or 3")
    if section.get("offload_param") and stage != 3:
        raise UserError(
            f"{KEY}.offload_param=true: parameter offload needs zero_stage 3 (got {stage})"
        )
    if section.get("offload_optimizer") and stage == 0:
        raise UserError(f"{KEY}.offload_optimizer=true: optimizer offload needs zero_stage >= 1")
    if section.get("precision", "bf16") not in PRECISIONS:
        raise UserError(
            f"{KEY}.precision={section.get('precision')!r}: must be one of {', '.join(PRECISIONS)}"
        )
    if not section.get("config_file") or "/" in str(section.get("config_file")):
        raise UserError(
            f"{KEY}.config_file={section.get('config_file')!r}: must be a plain file name "
            "(it is written next to the recipe)"
        )
    batch(recipe, world)


def build(recipe: Mapping[str, Any], world: int) -> dict[str, Any]:
    """The DeepSpeed config for this recipe on `world` processes (call `check` first)."""
    section = recipe["deepspeed"]
    micro, accum, total = batch(recipe, world)
    trainer = recipe.get("trainer") or {}
    model = recipe.get("model") or {}
    optim = model.get("optim") or {}
    exp = recipe.get("exp_manager") or {}
    precision = section.get("precision", "bf16")
    stage = section["zero_stage"]

    zero: dict[str, Any] = {"stage": stage}
    if stage > 0:
        zero.update(overlap_comm=True, contiguous_gradients=True, reduce_bucket_size=500_000_000)
    if section.get("offload_optimizer"):
        zero["offload_optimizer"] = {"device": "cpu", "pin_memory": True}
    if section.get("offload_param"):
        zero["offload_param"] = {"device": "cpu", "pin_memory": True}
    if stage == 3:
        # Consolidated 16-bit weights on save, so checkpoints load with from_pretrained.
        zero["stage3_gather_16bit_weights_on_model_save"] = True

    lr = optim.get("lr", 2e-5)
    config: dict[str, Any] = {
        "train_batch_size": total,
        "train_micro_batch_size_per_gpu": micro,
        "gradient_accumulation_steps": accum,
        "gradient_clipping": section.get("grad_clip", 1.0),
        "steps_per_print": trainer.get("log_every_n_steps", 10),
        "bf16": {"enabled": precision == "bf16"},
        "fp16": {"enabled": precision == "fp16"},
        "zero_optimization": zero,
        # DeepSpeed builds DeepSpeedCPUAdam when the optimizer is offloaded, FusedAdam otherwise.
        "optimizer": {
            "type": "AdamW",
            "params": {
                "lr": lr,
                "betas": list(optim.get("betas", [0.9, 0.95])),
                "eps": optim.get("eps", 1e-8),
                "weight_decay": optim.get("weight_decay", 0.0),
            },
        },
        "wall_clock_breakdown": False,
    }
    schedule = scheduler(optim, trainer, lr)
    if schedule:  # otherwise the Trainer's own scheduler of that name runs
        config["scheduler"] = schedule
    if exp.get("tensorboard") and exp.get("exp_dir"):
        config["tensorboard"] = {
            "enabled": True,
            "output_path": f"{str(exp['exp_dir']).rstrip('/')}/tensorboard",
            "job_name": str((recipe.get("run") or {}).get("name", "deepspeed")),
        }
    return config


def scheduler(
    optim: Mapping[str, Any], trainer: Mapping[str, Any], lr: float
) -> dict[str, Any] | None:
    """DeepSpeed's scheduler for the recipe's `model.optim.scheduler` (cosine, linear or
    constant, with its warm-up), or None for a schedule only Transformers has."""
    name = optim.get("scheduler", "cosine")
    warmup = optim.get("warmup_steps", 0)
    total = trainer.get("max_steps", 1000)
    if name == "cosine":
        params = {"total_num_steps": total, "warmup_num_steps": warmup, "warmup_min_ratio": 0.0}
        return {"type": "WarmupCosineLR", "params": {**params, "cos_min_ratio": 0.0}}
    if name == "linear":
        params = {"warmup_min_lr": 0, "warmup_max_lr": lr, "warmup_num_steps": warmup}
        return {"type": "WarmupDecayLR", "params": {**params, "total_num_steps": total}}
    if name in ("constant", "constant_with_warmup"):
        params = {"warmup_min_lr": 0 if warmup else lr, "warmup_max_lr": lr}
        return {"type": "WarmupLR", "params": {**params, "warmup_num_steps": warmup}}
    return None


def files(recipe: Mapping[str, Any], world: int) -> tuple[tuple[str, str], ...]:
    """The config files a DeepSpeed recipe's job reads next to its recipe (none otherwise)."""
    if not is_deepspeed(recipe):
        return ()
    text = json.dumps(build(recipe, world), indent=2) + "\n"
    return ((str(recipe["deepspeed"]["config_file"]), text),)
