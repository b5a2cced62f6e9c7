"""Recipes of NeMo Megatron GPT pretraining (`run.model_type: nemo`).

Keys follow NeMo's megatron_gpt_config.yaml; optimizers are NeMo's registered ones.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from hyperpod_launcher.config.recipe_common import (
    CHECKPOINT_MODE,
    NEMO_OPTIMIZERS,
    PRECISION,
    RunSection,
)
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

POSITION_EMBEDDINGS = Literal["learned_absolute", "rope", "alibi", "kerple", "xpos", "sandwich"]
Batches = Annotated[int | float, Range(ge=0)]  # a count, or a fraction of the data set


class NemoTrainer(Section):
    devices: Count
    num_nodes: Count
    accelerator: Literal["gpu", "auto"]
    precision: PRECISION
    logger: bool
    enable_checkpointing: bool
    use_distributed_sampler: bool
    max_epochs: Steps | None
    max_steps: Steps
    max_time: str | None  # DD:HH:MM:SS
    log_every_n_steps: Count
    val_check_interval: int | float
    limit_val_batches: Batches
    limit_test_batches: Batches
    accumulate_grad_batches: Count
    gradient_clip_val: NonNegativeFloat


class NemoCheckpointParams(Section):
    monitor: str
    save_top_k: int  # -1: keep all
    mode: CHECKPOINT_MODE
    always_save_nemo: bool
    save_nemo_on_train_end: bool
    filename: str
    model_parallel_size: Count | None


class StepTiming(Section):
    sync_cuda: bool
    buffer_size: Count


class WandbLogger(Section):
    project: str | None
    name: str | None


class NemoExpManager(Section):
    exp_dir: str | None
    name: str | None
    explicit_log_dir: str | None
    create_wandb_logger: bool
    wandb_logger_kwargs: WandbLogger
    create_tensorboard_logger: bool
    create_checkpoint_callback: bool
    checkpoint_callback_params: NemoCheckpointParams
    resume_if_exists: bool
    resume_ignore_no_checkpoint: bool
    resume_from_checkpoint: str | None
    log_step_timing: bool
    step_timing_kwargs: StepTiming


class NemoTokenizer(Section):
    library: Literal["huggingface", "sentencepiece", "megatron", "tiktoken"]
    type: str | None
    model: str | None
    vocab_file: str | None
    merge_file: str | None
    delimiter: str | None
    sentencepiece_legacy: bool
    use_fast: bool


class NemoData(Section):
    data_impl: Literal["mmap", "mock", "lazy", "retmmap"]
    data_prefix: list[Any] | dict[str, Any]  # paths, or weight/path pairs of a blend
    splits_string: str | None
    seq_length: Count
    skip_warmup: bool
    num_workers: NonNegativeInt
    dataloader_type: Literal["single", "cyclic"]
    reset_position_ids: bool
    reset_attention_mask: bool
    eod_mask_loss: bool
    index_mapping_dir: str | None


class NemoScheduler(Section):
    name: str
    warmup_steps: NonNegativeInt
    constant_steps: NonNegativeInt
    min_lr: NonNegativeFloat


class NemoOptimizer(Section):
    name: NEMO_OPTIMIZERS
    lr: PositiveFloat
    weight_decay: NonNegativeFloat
    betas: list[float]
    bucket_cap_mb: Count
    overlap_grad_sync: bool
    overlap_param_sync: bool
    contiguous_grad_buffer: bool
    contiguous_param_buffer: bool
    sched: NemoScheduler


class NemoModel(Section):
    mcore_gpt: bool
    micro_batch_size: Count
    global_batch_size: Count
    rampup_batch_size: list[int] | None
    tensor_model_parallel_size: Count
    pipeline_model_parallel_size: Count
    virtual_pipeline_model_parallel_size: Count | None
    context_parallel_size: Count
    encoder_seq_length: Count  # the sequence length
    max_position_embeddings: Count
    num_layers: Count
    hidden_size: Count
    ffn_hidden_size: Count
    num_attention_heads: Count
    num_query_groups: Count | None
    init_method_std: NonNegativeFloat
    use_scaled_init_method: bool
    hidden_dropout: Fraction
    attention_dropout: Fraction
    ffn_dropout: Fraction
    kv_channels: Count | None
    apply_query_key_layer_scaling: bool
    normalization: Literal["layernorm", "layernorm1p", "rmsnorm"]
    layernorm_epsilon: NonNegativeFloat
    do_layer_norm_weight_decay: bool
    make_vocab_size_divisible_by: Count
    pre_process: bool
    post_process: bool
    persist_layer_norm: bool
    bias: bool
    activation: str
    headscale: bool
    transformer_block_type: Literal["pre_ln", "post_ln", "normformer"]
    openai_gelu: bool
    normalize_attention_scores: bool
    position_embedding_type: POSITION_EMBEDDINGS
    rotary_percentage: Annotated[float, Range(gt=0, le=1)]
    rotary_base: float
    attention_type: str
    share_embeddings_and_output_weights: bool
    scale_positional_embedding: bool
    tokenizer: NemoTokenizer
    native_amp_init_scale: int | float
    native_amp_growth_interval: Count
    hysteresis: Count
    fp32_residual_connection: bool
    fp16_lm_cross_entropy: bool
    megatron_amp_O2: bool
    grad_allreduce_chunk_size_mb: Count
    grad_div_ar_fusion: bool
    gradient_accumulation_fusion: bool
    bias_activation_fusion: bool
    bias_dropout_add_fusion: bool
    masked_softmax_fusion: bool
    apply_rope_fusion: bool
    cross_entropy_loss_fusion: bool
    seed: int
    resume_from_checkpoint: str | None
    use_cpu_initialization: bool
    onnx_safe: bool
    apex_transformer_log_level: int
    gradient_as_bucket_view: bool
    sync_batch_comm: bool
    deterministic_mode: bool
    activations_checkpoint_granularity: Literal["selective", "full"] | None
    activations_checkpoint_method: Literal["uniform", "block"] | None
    activations_checkpoint_num_layers: Count | None
    num_micro_batches_with_partial_activation_checkpoints: Count | None
    activations_checkpoint_layers_per_pipeline: Count | None
    sequence_parallel: bool
    transformer_engine: bool
    fp8: bool
    fp8_e4m3: bool
    fp8_hybrid: bool
    fp8_margin: NonNegativeInt
    fp8_interval: Count
    fp8_amax_history_len: Count
    fp8_amax_compute_algo: Literal["max", "most_recent"]
    ub_tp_comm_overlap: bool
    use_flash_attention: bool
    use_emha: bool
    optim: NemoOptimizer
    data: NemoData


class NemoRecipe(Section):
    """A NeMo Megatron recipe (`megatron_*_nemo`)."""

    run: RunSection
    trainer: NemoTrainer
    exp_manager: NemoExpManager
    model: NemoModel
