"""NxD Training: world % (tensor x pipeline) == 0 and global batch % (micro batch x data
parallel) == 0; its required values and resume rule (NeMo's exp manager, which it reuses)."""

from __future__ import annotations

from hyperpod_launcher.stacks import checks
from hyperpod_launcher.stacks.base import (
    EXP_DIR,
    EXP_NEED,
    TRAIN_DIR,
    Get,
    Layout,
    Need,
    Recipe,
    Stack,
    always,
    checkpoints_on,
    gated_by_model_type,
)
from hyperpod_launcher.stacks.resume import Resume, lightning_log_dir

NAME = "neuron"
KEYS = {
    "TP": "distributed_strategy.tensor_model_parallel_size",
    "PP": "distributed_strategy.pipeline_model_parallel_size",
    "batch": "data.micro_batch_size,data.global_batch_size",
}
MODEL_CONFIG = "MODEL_CONFIG in the launch scripts: its Hugging Face config.json"


def layout(recipe: Recipe, nodes: int, devices: int) -> Layout:
    return checks.megatron_layout(recipe, nodes, devices, NAME, KEYS, "neuron")


def check(recipe: Recipe) -> None:
    checks.check_sequence(recipe, "model.encoder_seq_length", "model.max_position_embeddings")
    checks.check_data(recipe, ("data.train_dir", "data.val_dir", "model.model_config"))


def resume(recipe: Recipe) -> Resume:
    return lightning_log_dir(NAME, recipe)


def _starts_from_a_checkpoint(get: Get, name: str | None) -> bool:
    return "continued_pretrain" in (name or "") or (name or "").startswith("fine-tuning/")


def _sft_data(get: Get, name: str | None) -> bool:
    return bool(get("recipes.data.use_sft_style_data_module"))


STACK = Stack(
    name=NAME,
    schema="hyperpod_launcher.stacks.neuron.schema:NeuronRecipe",
    layout=layout,
    check=check,
    accelerator="neuron",
    required=(
        Need("data.train_dir", "training data", always, "data_dir", TRAIN_DIR),
        Need("model.model_config", "the model's config", always, None, MODEL_CONFIG),
        Need("exp_manager.exp_dir", EXP_NEED, checkpoints_on, "exp_dir", EXP_DIR),
        Need(
            "compiler_cache_url",
            "the compile cache folder (exported as NEURON_COMPILE_CACHE_URL; unset, it fails)",
            always,
            "cache_dir",
            "a folder every node shares",
            under="neuron",
        ),
        Need(
            "data.tokenizer.type",
            "its tokenizer (the fine-tuning data module loads it with AutoTokenizer)",
            _sft_data,
            None,
            "TOKENIZER_TYPE in the launch scripts: the pretrained model's folder",
        ),
        Need(
            "exp_manager.resume_from_checkpoint",
            "a checkpoint to start from (without one it trains from random weights)",
            _starts_from_a_checkpoint,
            None,
            "RESUME_FROM_CHECKPOINT in the launch scripts: the weights as an NxD checkpoint",
        ),
    ),
    resume=resume,
    checkpoint_key="exp_manager.checkpoint_callback_params.dirpath",
    package="src/neuronx_distributed_training",
    gated_mlp=gated_by_model_type,
)
