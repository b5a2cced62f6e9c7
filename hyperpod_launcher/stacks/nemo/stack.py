"""NeMo Megatron: world % (tensor x pipeline x context) == 0 and global batch % (micro batch
x data parallel) == 0; its required values and resume rule; its code is in NeMo's image."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hyperpod_launcher.config.time_limit import StepFacts
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
    checkpoints_on,
)
from hyperpod_launcher.stacks.resume import Resume, lightning_log_dir

NAME = "nemo"
KEYS = {
    "TP": "model.tensor_model_parallel_size",
    "PP": "model.pipeline_model_parallel_size",
    "CP": "model.context_parallel_size",
    "batch": "model.micro_batch_size,model.global_batch_size",
}


def layout(recipe: Recipe, nodes: int, devices: int) -> Layout:
    return checks.megatron_layout(recipe, nodes, devices, NAME, KEYS, "gpu")


def check(recipe: Recipe) -> None:
    checks.check_sequence(recipe, "model.encoder_seq_length", "model.max_position_embeddings")
    checks.check_data(recipe, ("model.data.data_prefix",), weights=True)


def resume(recipe: Recipe) -> Resume:
    return lightning_log_dir(NAME, recipe)


def _not_mock(get: Get, name: str | None) -> bool:
    return get("recipes.model.data.data_impl") != "mock"


def gated_mlp(model: Mapping[str, Any]) -> bool | None:
    activation = str(model.get("activation") or "")
    return activation.endswith("glu") if activation else None


STACK = Stack(
    name=NAME,
    schema="hyperpod_launcher.stacks.nemo.schema:NemoRecipe",
    layout=layout,
    check=check,
    required=(
        Need("model.data.data_prefix", "training data", _not_mock, None, TRAIN_DIR),
        Need("exp_manager.exp_dir", EXP_NEED, checkpoints_on, "exp_dir", EXP_DIR),
    ),
    resume=resume,
    checkpoint_key="exp_manager.checkpoint_callback_params.dirpath",
    in_container=("NeMo's entry script ships in the NeMo container", "nvcr.io/nvidia/nemo:24.07"),
    env=("CUDA_DEVICE_MAX_CONNECTIONS",),
    step_facts=StepFacts(
        layers="num_layers",
        ffn="ffn_hidden_size",
        groups="num_query_groups",
        batch="global_batch_size",
        seq="encoder_seq_length",
        saves_after_validation=True,
    ),
    gated_mlp=gated_mlp,
)
