"""Recipes of the launcher's DeepSpeed entry script (`run.model_type: deepspeed`).

The keys are the ones examples/deepspeed_clm.py and ds_config.py read.
"""

from __future__ import annotations

from typing import Literal

from hyperpod_launcher.config.recipe_common import RunSection
from hyperpod_launcher.config.rules import (
    Count,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    Section,
)


class DeepSpeedTrainer(Section):
    devices: Count
    num_nodes: Count
    max_steps: Count
    log_every_n_steps: Count


class DeepSpeedExpManager(Section):
    exp_dir: str | None
    checkpoint_dir: str | None
    save_every_n_steps: NonNegativeInt  # 0: only at the end
    checkpoint_format: Literal["hf", "zero"]
    resume_from_checkpoint: str | None
    tensorboard: bool


class DeepSpeedOptimizer(Section):
    lr: PositiveFloat
    weight_decay: NonNegativeFloat
    betas: list[float]
    eps: PositiveFloat
    warmup_steps: NonNegativeInt


class DeepSpeedData(Section):
    train_dir: str | None
    val_dir: str | None
    dataset_type: Literal["hf"]


class DeepSpeedModel(Section):
    hf_model_name_or_path: str | None
    hf_access_token: str | None
    do_finetune: bool
    max_context_width: Count  # the sequence length
    max_position_embeddings: Count | None
    gradient_checkpointing: bool
    optim: DeepSpeedOptimizer
    data: DeepSpeedData


class DeepSpeedSection(Section):
    config_file: str
    zero_stage: Literal[0, 1, 2, 3]
    offload_optimizer: bool
    offload_param: bool
    micro_batch_size: Count  # per GPU
    global_batch_size: Count
    gradient_accumulation_steps: Count | None  # null: global / (micro x data parallel)
    precision: Literal["bf16", "fp16", "fp32"]
    grad_clip: NonNegativeFloat


class DeepSpeedRecipe(Section):
    """A DeepSpeed ZeRO recipe (`fine-tuning/deepspeed/...`)."""

    run: RunSection
    trainer: DeepSpeedTrainer
    exp_manager: DeepSpeedExpManager
    model: DeepSpeedModel
    deepspeed: DeepSpeedSection
