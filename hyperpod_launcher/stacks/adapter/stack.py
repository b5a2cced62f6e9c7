"""The HyperPod training adapter: its layout, checks, required values and resume rule.

Layout: world = nodes x devices; world % (tensor x expert x shard) == 0 (hybrid sharding
replicates over the rest); context parallel divides shard; tensor/expert parallel > 1 need
use_smp_model. fp8 runs on the p5 family only.
"""

from __future__ import annotations

import os

from hyperpod_launcher.config.instances import InstanceType
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
    always,
    gated_by_model_type,
)
from hyperpod_launcher.stacks.resume import Resume
from hyperpod_launcher.util.dotted import get as _get
from hyperpod_launcher.util.errors import UserError

NAME = "adapter"
FORCE_FP8 = "force_fp8"


def layout(recipe: Recipe, nodes: int, devices: int) -> Layout:
    world = nodes * devices
    tp = checks.degree(recipe, "model.tensor_model_parallel_degree")
    ep = checks.degree(recipe, "model.expert_model_parallel_degree")
    cp = checks.degree(recipe, "model.context_parallel_degree")
    shard = checks.degree(recipe, "model.shard_degree")
    if world % (tp * ep * shard):
        raise UserError(
            f"recipes.model.shard_degree={shard}: tensor_model_parallel_degree {tp} x "
            f"expert_model_parallel_degree {ep} x shard_degree {shard} = {tp * ep * shard} must "
            f"divide {checks.world_text(nodes, devices)}"
        )
    if shard % cp:
        raise UserError(
            f"recipes.model.context_parallel_degree={cp}: must divide shard_degree {shard}"
        )
    if not _get(recipe, "use_smp_model", True):
        for key, value in (("tensor", tp), ("expert", ep)):
            if value > 1:
                raise UserError(
                    f"recipes.model.{key}_model_parallel_degree={value}: needs "
                    "recipes.use_smp_model=true (plain FSDP has no tensor or expert parallelism)"
                )
    replicas = world // (tp * ep * shard)
    notes = [f"{replicas} replicas"] if replicas > 1 else []
    if _get(recipe, "model.fp8") is True:
        notes.append("fp8")
    degrees = {"TP": tp, "shard": shard, "CP": cp, "EP": ep}
    return Layout(NAME, world, degrees, tuple(notes))


def _check_finetuning(recipe: Recipe) -> None:
    peft = _get(recipe, "model.peft.peft_type")
    finetune = _get(recipe, "model.do_finetune", False)
    if peft is not None and not finetune:
        raise UserError(
            f"recipes.model.peft.peft_type={peft}: PEFT adapts pretrained weights, so it needs "
            "recipes.model.do_finetune=true"
        )
    model = _get(recipe, "model.hf_model_name_or_path")
    if finetune and (model is None or not str(model).strip()):
        raise UserError(
            f"recipes.model.hf_model_name_or_path={checks.fmt(model)}: fine-tuning starts from "
            "pretrained weights; name a Hugging Face model id or a path "
            "(HF_MODEL_NAME_OR_PATH in the launch scripts)"
        )


def check(recipe: Recipe) -> None:
    checks.check_sequence(recipe, "model.max_context_width", "model.max_position_embeddings")
    _check_finetuning(recipe)
    checks.check_data(recipe, ("model.data.train_dir", "model.data.val_dir"))


def check_instance(recipe: Recipe, instance: InstanceType, force_fp8: bool) -> None:
    if _get(recipe, "model.fp8") is True and not force_fp8 and not instance.fp8_adapter:
        raise UserError(
            f"recipes.model.fp8=true: the training adapter supports fp8 on the p5 family only, "
            f"not on instance_type={instance.name}; set recipes.model.fp8=false "
            f"(or {FORCE_FP8}=true to try it anyway)"
        )


def resume(recipe: Recipe) -> Resume:
    """Sharded checkpoints in `<checkpoint_dir>/sharded/step_<N>/tp<X>_ep<Y>/` (PEFT:
    `peft_sharded/`); `exp_manager.resume_from_checkpoint` names the `step_<N>` folder and the
    adapter appends `tp<X>_ep<Y>` for each rank itself. `full/steps_<N>/` holds weights only
    and never resumes a run. Local checkpoints (`exp_manager.auto_checkpoint.enabled`) are
    reloaded by the adapter itself from `<checkpoint_dir>/local/`, unless a resume path is
    passed."""
    if _get(recipe, "exp_manager.auto_checkpoint.enabled"):
        return Resume(NAME, reason="the adapter reloads its local checkpoints itself")
    exp_dir = _get(recipe, "exp_manager.exp_dir")
    root = _get(recipe, "exp_manager.checkpoint_dir") or (
        os.path.join(str(exp_dir), "checkpoints") if exp_dir else None
    )
    if not root:
        return Resume(NAME, reason="no checkpoint folder is configured", possible=False)
    peft = _get(recipe, "model.peft.peft_type") is not None
    by_step = _get(recipe, "exp_manager.checkpoint_callback_params.monitor", "step") == "step"
    return Resume(
        NAME,
        folder=os.path.join(str(root).rstrip("/"), "peft_sharded" if peft else "sharded"),
        pattern="step_*" if by_step else "*",
        order="step" if by_step else "mtime",
        complete="tp*_ep*",
    )


def _not_synthetic(get: Get, name: str | None) -> bool:
    data = "recipes.model.data"
    synthetic = get(f"{data}.use_synthetic_data") or get(f"{data}.dataset_type") == "synthetic"
    return not synthetic and not get("recipes.model.multi_modal")


STACK = Stack(
    name=NAME,
    schema="hyperpod_launcher.stacks.adapter.schema:AdapterRecipe",
    layout=layout,
    check=check,
    check_instance=check_instance,
    required=(
        Need("model.data.train_dir", "training data", _not_synthetic, "data_dir", TRAIN_DIR),
        # The adapter's config schema requires it whether or not checkpoints are written.
        Need("exp_manager.exp_dir", EXP_NEED, always, "exp_dir", EXP_DIR),
    ),
    resume=resume,
    checkpoint_key="exp_manager.checkpoint_dir",
    final_model_key="exp_manager.export_full_model.final_export_dir",
    package="src/hyperpod_nemo_adapter",
    env=("CUDA_DEVICE_MAX_CONNECTIONS",),
    step_facts=StepFacts(
        layers="num_hidden_layers",
        ffn="intermediate_size",
        groups="num_key_value_heads",
        batch="train_batch_size",
        seq="max_context_width",
        vocab="vocab_size",
        batch_per_rank=True,
    ),
    gated_mlp=gated_by_model_type,
)
