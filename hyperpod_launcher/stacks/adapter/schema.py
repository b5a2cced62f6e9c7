"""Recipes of the HyperPod training adapter (SMP v2 + FSDP, `run.model_type: hf`).

Keys, types and enums follow the adapter's own config schema (hyperpod_nemo_adapter
conf/config_schemas.py): it validates these at start-up, but a failure there exits 0.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from hyperpod_launcher.config.recipe_common import CHECKPOINT_MODE, PRECISION, RunSection
from hyperpod_launcher.config.rules import (
    Count,
    Fraction,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    Range,
    Section,
)

SHARDING_STRATEGIES = Literal[
    "no_shard", "shard_grad_op", "hybrid_shard", "_hybrid_shard_zero2", "full_shard"
]
PEFT_TYPES = Literal["lora", "qlora_4bit"]


class AdapterTrainer(Section):
    devices: Count | None
    num_nodes: Count
    accelerator: Literal["gpu", "auto"]
    precision: PRECISION
    max_steps: Count  # the adapter has no unlimited (-1) run
    log_every_n_steps: NonNegativeInt
    val_check_interval: int | float | None
    limit_val_batches: Annotated[int | float, Range(ge=0)]
    accumulate_grad_batches: Count
    gradient_clip_val: NonNegativeFloat | None


class CheckpointCallbackParams(Section):
    save_top_k: NonNegativeInt  # 0: no checkpoints
    every_n_train_steps: NonNegativeInt
    monitor: str
    mode: CHECKPOINT_MODE
    save_last: bool


class ExportFullModel(Section):
    every_n_train_steps: NonNegativeInt
    save_last: bool
    final_export_dir: str | None


class AutoCheckpoint(Section):
    enabled: bool | None
    warmup_steps: Annotated[int, Range(ge=3)]
    drop_n_warmup_steps: Annotated[int, Range(ge=2)]


class AdapterExpManager(Section):
    exp_dir: str | None
    name: str | None
    explicit_log_dir: str | None
    create_tensorboard_logger: bool
    summary_writer_kwargs: dict[str, Any]
    create_wandb_logger: bool
    wandb_logger_kwargs: dict[str, Any]
    create_mlflow_logger: bool
    mlflow_logger_kwargs: dict[str, Any]
    create_checkpoint_callback: bool
    checkpoint_callback_params: CheckpointCallbackParams
    export_full_model: ExportFullModel
    checkpoint_dir: str | None
    resume_from_checkpoint: str | None
    auto_checkpoint: AutoCheckpoint


class AdapterScheduler(Section):
    name: Literal["CosineAnnealing"]
    warmup_steps: NonNegativeInt
    constant_steps: NonNegativeInt
    min_lr: NonNegativeFloat


class AdapterOptimizer(Section):
    name: Literal["adamw"]
    lr: PositiveFloat
    weight_decay: NonNegativeFloat
    betas: list[float]
    sched: AdapterScheduler


class AdapterData(Section):
    train_dir: str | list[str] | None
    val_dir: str | list[str] | None
    dataset_type: Literal["hf", "synthetic"]
    use_synthetic_data: bool
    tokenizer_name: str | None
    zipped_data: bool


class Peft(Section):
    peft_type: PEFT_TYPES | None
    rank: Count
    alpha: NonNegativeFloat
    dropout: Fraction
    target_modules: list[str] | None


class Dpo(Section):
    enabled: bool
    beta: NonNegativeFloat
    label_smoothing: Fraction


class RopeScaling(Section):
    rope_type: Literal["llama3"] | None
    factor: float
    high_freq_factor: float
    low_freq_factor: float
    original_max_position_embeddings: Count


class AdapterModel(Section):
    model_type: str
    train_batch_size: Count
    val_batch_size: Count
    fsdp: bool
    moe: bool
    activation_checkpointing: bool
    activation_loading_horizon: Count
    delayed_param: bool
    offload_activations: bool
    seed: int
    grad_clip: NonNegativeFloat  # 0: off
    sharding_strategy: SHARDING_STRATEGIES
    forward_prefetch: bool
    shard_degree: Count | None
    backward_fetch_policy: Literal["backward_post", "backward_pre"]
    auto_wrap_policy: Literal["size_based_auto_wrap_policy", "transformer_auto_wrap_policy"]
    limit_all_gathers: bool
    use_orig_param: bool
    context_parallel_degree: Count
    tensor_model_parallel_degree: Count
    expert_model_parallel_degree: Count
    max_context_width: Count  # the sequence length
    max_position_embeddings: Count | None
    num_hidden_layers: Count | None
    hidden_size: Count | None
    num_attention_heads: Count | None
    intermediate_size: Count | None
    initializer_range: NonNegativeFloat | None
    layernorm_epsilon: NonNegativeFloat | None
    vocab_size: Count | None
    num_key_value_heads: Count | None
    use_flash_attention: bool | None
    mistral_sliding_window: Count | None
    mixtral_sliding_window: Count | None
    sliding_window: Count | None
    use_sliding_window: bool | None
    max_window_layers: Count | None
    rms_norm_eps: NonNegativeFloat | None
    rope_theta: float
    tie_word_embeddings: bool | None
    multi_modal: bool
    num_experts_per_tok: Count | None
    num_local_experts: Count | None
    moe_load_balancing: Literal["sinkhorn", "balanced", "aux_loss", "none"]
    global_token_shuffle: bool | None
    moe_all_to_all_dispatcher: bool | None
    fp8: bool
    fp8_amax_history_len: Count
    fp8_amax_compute_algo: Literal["max", "most_recent"]
    do_finetune: bool
    hf_model_name_or_path: str | None
    hf_access_token: str | None
    precision: PRECISION | None
    lr_decay_iters: Count
    log_reduced_training_loss: bool
    nvte_attn_backend: Literal["fused", "flash"] | None
    optim: AdapterOptimizer
    data: AdapterData
    peft: Peft
    dpo: Dpo
    rope_scaling: RopeScaling
    gpu_affinity: dict[str, Any]
    nsys_profile: dict[str, Any]
    viztracer: dict[str, Any]


class AdapterRecipe(Section):
    """A training-adapter recipe (`recipes=training/llama/hf_...`, `fine-tuning/...`)."""

    run: RunSection
    name: list[str] | str
    use_smp_model: bool
    distributed_backend: Literal["smddp", "nccl"]
    log_perf_metrics: bool
    trainer: AdapterTrainer
    exp_manager: AdapterExpManager
    model: AdapterModel
