"""Recipes of Amazon Nova (`run.model_type: amazon.nova-*`), run by AWS's Nova images.

The keys are SageMaker HyperPod v1.5.1's Nova recipes: a `run` section, then one of
`training_config` (SFT, DPO, continued pretraining, data distillation), `evaluation` and
`inference` (evaluations), or the five PPO services (`ppo_reward`, `ppo_critic`, `ppo_anchor`,
`ppo_actor_generation`, `ppo_actor_train`). Ranges are the ones those recipes state; the sets
that depend on the model and method (replicas, global batch size) are checked by `nova.check`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from hyperpod_launcher.config.rules import (
    Count,
    Fraction,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    Range,
    Section,
)

LORA_ALPHAS = Literal[32, 64, 96, 128, 160, 192]


class NovaRun(Section):
    name: str | None
    model_type: str | None
    model_name_or_path: str | None
    replicas: Count | None
    data_s3_path: str | None
    output_s3_path: str | None
    # PPO: nodes of each service
    actor_train_replicas: Count | None
    rm_replicas: Count | None
    cm_replicas: Count | None
    actor_generation_replicas: Count | None
    am_replicas: Count | None


class NovaTrainer(Section):
    max_epochs: Count
    num_nodes: Count
    devices: Count  # GPUs per node; 8 (a p5.48xlarge) when unset


class NovaSched(Section):
    warmup_steps: NonNegativeInt
    constant_steps: NonNegativeInt
    min_lr: NonNegativeFloat


class NovaOptim(Section):
    lr: PositiveFloat
    name: Literal["distributed_fused_adam"]
    adam_w_mode: bool
    eps: PositiveFloat
    weight_decay: Fraction
    betas: list[Fraction]
    sched: NovaSched


class NovaLora(Section):
    loraplus_lr_ratio: Annotated[float, Range(ge=0, le=100)]
    alpha: LORA_ALPHAS
    adapter_dropout: Fraction


class NovaPeft(Section):
    peft_scheme: Literal["lora"] | None  # null: full-rank training
    lora_tuning: NovaLora


class NovaDpo(Section):
    beta: Annotated[float, Range(ge=0.001, le=0.5)]


class NovaModel(Section):
    hidden_dropout: Fraction
    attention_dropout: Fraction
    ffn_dropout: Fraction
    optim: NovaOptim
    peft: NovaPeft
    dpo_cfg: NovaDpo


class NovaTrainingConfig(Section):
    max_length: Count
    global_batch_size: Count
    trainer: NovaTrainer
    model: NovaModel
    # data distillation (strings, as the distillation job reads them)
    distillation_data: str
    maxNumberOfPrompts: str
    maxResponseLength: str
    minNumberOfPrompts: str
    maxInputFileSizeInGB: str
    maxLineLengthInKB: str
    maxStudentModelFineTuningContextLengthInTokens: str
    teacherModelId: str
    temperature: str
    top_p: str
    customer_bucket: str | None
    kms_key: str | None


class NovaEvaluation(Section):
    task: str
    strategy: str
    metric: str
    subtask: str | None


class NovaInference(Section):
    max_new_tokens: Count
    top_k: Annotated[int, Range(ge=-1)]
    top_p: Annotated[float, Range(gt=0, le=1)]
    temperature: NonNegativeFloat


class NovaResources(Section):
    devices: Count


class PpoModel(Section):
    global_batch_size: Count
    optim: NovaOptim
    ent_coeff: NonNegativeFloat
    clip_ratio: NonNegativeFloat
    lam: NonNegativeFloat
    kl_loss_coeff: NonNegativeFloat
    kl_loss_type: str
    kl_reward_penalty_coeff: NonNegativeFloat
    hidden_dropout: Fraction
    attention_dropout: Fraction
    ffn_dropout: Fraction


class PpoTrainer(Section):
    num_nodes: Count
    devices: Count


class PpoService(Section):
    max_length: Count
    actor_model_max_length: Count
    reward_model_max_length: Count
    max_steps: Count
    trajectory_buffer_scale: Count
    trainer: PpoTrainer
    model: PpoModel


class NovaRecipe(Section):
    run: NovaRun
    training_config: NovaTrainingConfig
    evaluation: NovaEvaluation
    inference: NovaInference
    resource_config: NovaResources
    ppo_reward: PpoService
    ppo_critic: PpoService
    ppo_anchor: PpoService
    ppo_actor_generation: PpoService
    ppo_actor_train: PpoService
