"""Recipes of the open fine-tuning entry (`run.model_type: open_ft`, examples/open_ft.py).

The keys are the ones the entry reads (TRL's SFT/DPO/GRPO trainers, PEFT, Transformers'
Trainer) and, with `model.strategy: deepspeed`, the `deepspeed` section ds_config.py reads.
"""

from __future__ import annotations

from typing import Annotated, Literal

from hyperpod_launcher.config.recipe_common import RunSection
from hyperpod_launcher.config.rules import (
    Count,
    Fraction,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    Range,
    Section,
    Steps,
)

# Transformers' SchedulerType values (lr_scheduler_type).
SCHEDULERS = Literal[
    "linear",
    "cosine",
    "cosine_with_restarts",
    "polynomial",
    "constant",
    "constant_with_warmup",
    "inverse_sqrt",
    "reduce_lr_on_plateau",
    "cosine_with_min_lr",
    "warmup_stable_decay",
]


class OpenTrainer(Section):
    devices: Count
    num_nodes: Count
    max_steps: Steps  # -1: num_epochs
    num_epochs: PositiveFloat
    log_every_n_steps: Count
    precision: Literal["bf16", "fp16", "fp32"]
    grad_clip: NonNegativeFloat
    seed: NonNegativeInt


class OpenExpManager(Section):
    exp_dir: str | None
    checkpoint_dir: str | None
    save_every_n_steps: NonNegativeInt  # 0: only at the end
    save_total_limit: Count | None
    resume_from_checkpoint: str | None
    tensorboard: bool
    wandb_project: str | None


class OpenOptimizer(Section):
    name: str  # a Transformers OptimizerNames value
    lr: PositiveFloat
    weight_decay: NonNegativeFloat
    betas: list[float]
    eps: PositiveFloat
    scheduler: SCHEDULERS
    warmup_steps: NonNegativeInt


class OpenPeft(Section):
    peft_type: Literal["lora", "qlora"] | None  # null: full weights
    rank: Count
    alpha: Count
    dropout: Annotated[float, Range(ge=0, le=0.99)]
    target_modules: str | list[str]  # "all-linear" or module names
    target_parameters: list[str] | None  # fused MoE expert parameters (PEFT target_parameters)
    merge_on_save: bool


class OpenFsdp(Section):
    cpu_offload: bool


class OpenData(Section):
    train_dir: str | None
    val_dir: str | None
    train_channel: str | None  # SageMaker channel name
    val_channel: str | None
    eval_split: Fraction
    eval_every_n_steps: NonNegativeInt


class OpenModel(Section):
    hf_model_name_or_path: str | None
    hf_access_token: str | None
    trust_remote_code: bool
    attn_implementation: Literal["sdpa", "eager", "flash_attention_2", "flash_attention_3"]
    max_context_width: Count  # TRL's max_length
    max_position_embeddings: Count | None
    packing: bool
    completion_only_loss: bool  # SFT: loss on completions / assistant turns only
    chat_template: str | None
    gradient_checkpointing: bool
    strategy: Literal["ddp", "fsdp", "deepspeed"]
    fsdp: OpenFsdp
    micro_batch_size: Count
    gradient_accumulation_steps: Count
    optim: OpenOptimizer
    peft: OpenPeft
    data: OpenData


class DpoKnobs(Section):
    beta: PositiveFloat
    loss_type: Literal["sigmoid", "hinge", "ipo", "robust", "bco_pair", "apo_zero", "apo_down"]


class GrpoKnobs(Section):
    reward_funcs: list[str]  # built-ins (format, exact_match) or module:function
    num_generations: Count
    max_completion_length: Count
    temperature: PositiveFloat
    beta: NonNegativeFloat  # KL weight; 0 needs no reference model


class OpenMethod(Section):
    name: Literal["sft", "dpo", "grpo"]
    dpo: DpoKnobs
    grpo: GrpoKnobs


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


class OpenRecipe(Section):
    """An open fine-tuning recipe (`fine-tuning/<family>/open_...`)."""

    run: RunSection
    trainer: OpenTrainer
    exp_manager: OpenExpManager
    model: OpenModel
    method: OpenMethod
    deepspeed: DeepSpeedSection  # model.strategy: deepspeed
