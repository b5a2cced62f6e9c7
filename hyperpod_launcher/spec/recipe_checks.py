"""Launch-time checks of a composed recipe: one line per problem, before anything is written.

Each recipe belongs to a training stack (the stacks registry tells which from
`run.model_type`), and its package states the stack's own rules (`stacks/<name>/stack.py`):
its parallel layout on nodes x devices, then its sequence, fine-tuning and data rules. Keys,
types, ranges and enums of single values are the stack's recipe schema, checked before these.
Here are the rules that need the hardware (Trainium vs GPU, CUDA-only features, the stack's
own instance rules such as fp8 on the p5 family); they run when `instance_type` is given, as
a recipe's `run.instance_type` only says what it was sized for. A caller that has decided the
recipe's stack passes it (`stack=`); otherwise it is looked up.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hyperpod_launcher import backends, stacks
from hyperpod_launcher.config.instances import InstanceType
from hyperpod_launcher.spec import local_gpus
from hyperpod_launcher.stacks.base import Layout, Stack
from hyperpod_launcher.stacks.checks import s3_problem
from hyperpod_launcher.util.dotted import get as _get
from hyperpod_launcher.util.errors import UserError

__all__ = ["Layout", "s3_problem"]


def stack_of(recipe: Mapping[str, Any]) -> str:
    return stacks.of(recipe)


def _stack(recipe: Mapping[str, Any], stack: str | None) -> Stack:
    return stacks.get(stack or stacks.of(recipe))


def accelerator_of(recipe: Mapping[str, Any], stack: str | None = None) -> str:
    return _stack(recipe, stack).accelerator


def check_instance(
    recipe: Mapping[str, Any],
    instance: InstanceType | None,
    force_fp8: bool = False,
    stack: str | None = None,
) -> None:
    """The rules that need the hardware; nothing to check without an instance type."""
    if instance is None:
        return
    own = _stack(recipe, stack)
    model_type = _get(recipe, "run.model_type", "hf")
    if own.accelerator == "neuron" and instance.accelerator != "neuron":
        raise UserError(
            f"instance_type={instance.name}: this is a Trainium recipe (run.model_type="
            f"{model_type}) and needs a Trainium instance such as trn1.32xlarge"
        )
    if own.accelerator != "neuron" and instance.accelerator == "neuron":
        raise UserError(
            f"instance_type={instance.name}: this is a GPU recipe (run.model_type={model_type}) "
            "and cannot run on Trainium; use a GPU instance such as p5.48xlarge"
        )
    own.check_instance(recipe, instance, force_fp8)


def check_hardware(
    recipe: Mapping[str, Any],
    instance_type: str | None,
    instance: InstanceType | None,
    backend: str,
    stack: str | None = None,
) -> None:
    """A setting whose kernels need CUDA (QLoRA's bitsandbytes): a GPU instance, or a GPU
    here."""
    need = _stack(recipe, stack).needs_cuda
    if need is None or _get(recipe, need.key) != need.value:
        return
    setting = f"recipes.{need.key}={need.value}"
    if instance is not None and instance.accelerator != "gpu":
        raise UserError(
            f"instance_type={instance_type}: {need.what} ({setting}) needs CUDA GPUs; use a "
            f"GPU instance or recipes.{need.key}={need.instead}"
        )
    if not instance_type and backends.runs_here(backend) and local_gpus.count() == 0:
        raise UserError(
            f"{setting}: {need.what} needs a CUDA GPU and this machine has none; use "
            f"recipes.{need.key}={need.instead}"
        )


def layout(recipe: Mapping[str, Any], nodes: int, devices: int, stack: str | None = None) -> Layout:
    """The recipe's parallel layout on nodes x devices; raises UserError if it does not fit."""
    return _stack(recipe, stack).layout_of(recipe, nodes, devices)


def check(
    recipe: Mapping[str, Any], *, nodes: int, devices: int, stack: str | None = None
) -> Layout:
    """Check a resolved recipe on nodes x devices (processes per node); return its layout."""
    own = _stack(recipe, stack)
    result = own.layout_of(recipe, nodes, devices)
    own.check(recipe)
    return result
