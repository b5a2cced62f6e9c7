"""Recipes of NxD Training on Trainium (`run.model_type: neuron-hf`).

Keys follow NxD Training's config (its YAML reference); optimizers are NeMo's plus NxD
Training's `adamw_fp32OptState`, precision types the ones its training script accepts.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from hyperpod_launcher.config.recipe_common import (
    CHECKPOINT_MODE,
    NEMO_OPTIMIZER_NAMES,
    RunSection,
)
from hyperpod_launcher.config.rules import (
    Count,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    Range,
    Section,
    Steps,
)

NEURON_OPTIMIZER_NAMES = (*NEMO_OPTIMIZER_NAMES, "adamw_fp32OptState")
NEURON_OPTIMIZERS = Literal[NEURON_OPTIMIZER_NAMES]  # type: ignore[valid-type]
NEURON_PRECISION = Literal[
    "bf16SR", "fp32", "autocast", "mixed_precision", "mixed_precisionSR", "manual"
]
Batches = Annotated[int | float, Range(ge=0)]  # a count, or a fraction of the data set


class NeuronTrainer(Section):
    devices: Count
    num_nodes: Count
    max_epochs: Steps | None
    max_steps: Steps
    log_every_n_steps: Count
    val_check_interval: int | float | None
    check_val_every_n_epoch: Count | None
    num_sanity_val_steps: NonNegativeInt
    limit_val_batches: Batches
    limit_test_batches: Batches
    gradient_clip_val: NonNegativeFloat


class NeuronCheckpointParams(Section):
    filename: str
    mode: CHECKPOINT_MODE
    model_parallel_size: Count
    monitor: str
    save_last: bool
    save_top_k: int  # -1: keep all
    every_n_train_steps: Annotated[int, Range(ge=0, also=(-1,))]  # HyperPod v1 uses -1


class NeuronExpManager(Section):
    exp_dir: str | None
    name: str | None
    explicit_log_dir: str | None
    log_local_rank_0_only: bool
    create_tensorboard_logger: bool
    summary_writer_kwargs: dict[str, Any]
    create_wandb_logger: bool
    wandb_logger_kwargs: dict[str, Any]
    create_mlflow_logger: bool
    mlflow_logger_kwargs: dict[str, Any]
    create_checkpoint_callback: bool
    checkpoint_callback_params: NeuronCheckpointParams
    resume_if_exists: bool
    resume_ignore_no_checkpoint: bool
    resume_from_checkpoint: str | None
    log_parameter_norm: bool
    log_gradient_norm: bool
    enable_recovery_time_instrumentation: bool
    save_xser: bool
    load_xser: bool
    save_bf16: bool
    async_checkpointing: bool


class DistributedStrategy(Section):
    tensor_model_parallel_size: Count
    pipeline_model_parallel_size: Count
    virtual_pipeline_model_parallel_size: Count
    expert_model_parallel_size: Count
    zero1: bool
    sequence_parallel: bool
    kv_replicator: Count


class NeuronTokenizer(Section):
    type: str | None


class NeuronData(Section):
    micro_batch_size: Count
    global_batch_size: Count
    train_dir: str | None
    val_dir: str | None
    dev_choose_samples: Count | None
    seq_length: Count | None
    tokenizer: NeuronTokenizer
    packing: bool
    use_sft_style_data_module: bool


class NeuronScheduler(Section):
    name: str
    warmup_steps: NonNegativeInt
    max_steps: Steps
    constant_steps: NonNegativeInt
    min_lr: NonNegativeFloat


class NeuronOptimizer(Section):
    name: NEURON_OPTIMIZERS
    lr: PositiveFloat
    weight_decay: NonNegativeFloat
    capturable: bool
    betas: list[float]
    sched: NeuronScheduler


class Fusions(Section):
    softmax: bool
    flash_attention: bool


class NeuronModel(Section):
    model_config: str | None  # the model's Hugging Face config.json
    encoder_seq_length: Count  # the sequence length
    max_position_embeddings: Count
    num_layers: Count
    hidden_size: Count
    qkv_linear: bool
    fuse_qkv: bool
    rope_theta: float
    use_cpu_initialization: bool
    weight_init_only: bool
    activations_checkpoint_granularity: Literal["selective", "full"] | None
    activations_checkpoint_recompute: list[str] | None
    activations_checkpoint_recompute_mlp: bool
    fusions: Fusions
    do_layer_norm_weight_decay: bool
    optim: NeuronOptimizer


class NeuronPrecision(Section):
    type: NEURON_PRECISION
    master_weights: bool
    fp32_grad_acc: bool
    xla_use_bf16: str | int
    xla_downcast_bf16: str | int
    neuron_rt_stochastic_rounding_en: str | int


class NeuronRecipe(Section):
    """An NxD Training recipe (`*_trn1*`)."""

    run: RunSection
    name: str
    model_source: Literal["hf", "megatron"]
    seed: int
    trainer: NeuronTrainer
    exp_manager: NeuronExpManager
    distributed_strategy: DistributedStrategy
    data: NeuronData
    model: NeuronModel
    model_alignment_strategy: dict[str, Any] | None
    precision: NeuronPrecision
    compiler_flags: str
    compiler_cache_url: str | None
    aync_exec_max_inflight_requests: Count
    bucket_size_collectives: Count
    neuron_rt_exec_timeout: Count
    neuron_experimental_compress_rg: bool
