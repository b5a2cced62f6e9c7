"""The stack registry: one entry per training stack, the only place outside a stack that names it.

A recipe's stack is the training code that reads it (the HyperPod training adapter, NxD
Training, NeMo, the open fine-tuning entry, AWS's Nova images; a custom script is a stack of
its own). Each stack is one package, `stacks/<name>/`, whose `stack.py` states what the stack
needs (`base.Stack`): its recipe key schema, parallel layout and checks, required values,
resume rule, pinned training code, environment and entry. Entries name that object as a
"module:NAME" string, imported on first use, so a launch loads only its own stack; which stack
a recipe belongs to is decided here from its `run.model_type`, without loading any of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hyperpod_launcher.util import lazy

if TYPE_CHECKING:
    from hyperpod_launcher.stacks.base import Stack


@dataclass(frozen=True)
class Entry:
    stack: str  # "module:NAME" of its base.Stack
    model_types: tuple[str, ...] = ()  # the recipes' run.model_type values naming it
    # "module:function" telling from the recipe whether it is this stack's, tried first (a
    # family of model types such as amazon.nova-<model>-..., recipes without a model type)
    matches: str | None = None
    # A top-level recipe section that marks the stack when run.model_type names none
    section: str | None = None


_REGISTRY: dict[str, Entry] = {
    "nova": Entry(
        "hyperpod_launcher.stacks.nova.stack:STACK", matches="hyperpod_launcher.stacks.nova:is_nova"
    ),
    "adapter": Entry("hyperpod_launcher.stacks.adapter.stack:STACK", ("hf",)),
    "neuron": Entry(
        "hyperpod_launcher.stacks.neuron.stack:STACK",
        ("neuron-hf",),
        section="distributed_strategy",
    ),
    "nemo": Entry("hyperpod_launcher.stacks.nemo.stack:STACK", ("nemo",)),
    "open": Entry("hyperpod_launcher.stacks.open.stack:STACK", ("open_ft",)),
    "custom": Entry("hyperpod_launcher.stacks.custom.stack:STACK"),
}
DEFAULT = "adapter"  # the stack of a recipe that names none (HyperPod's recipes)
SCRIPT = "custom"  # the stack of a custom script (training_cfg instead of a recipe)


def register(name: str, entry: Entry) -> None:
    """Add a stack that lives outside this package (a plugin, a test's toy stack)."""
    _REGISTRY[name] = entry


def names() -> tuple[str, ...]:
    return tuple(_REGISTRY)


def get(name: str) -> Stack:
    return lazy.load(_REGISTRY[name].stack)


def named_by(model_type: Any) -> str | None:
    """The stack whose recipes' run.model_type is exactly `model_type`, or None."""
    return next((name for name, e in _REGISTRY.items() if model_type in e.model_types), None)


def of(recipe: Mapping[str, Any]) -> str:
    """The stack of a (resolved) recipe: a stack's own test, its run.model_type, else a
    section only one stack has."""
    for name, entry in _REGISTRY.items():
        if entry.matches and lazy.load(entry.matches)(recipe):
            return name
    run = recipe.get("run")
    model_type = run.get("model_type") if isinstance(run, Mapping) else None
    named = named_by(model_type)
    if named is not None:
        return named
    for name, entry in _REGISTRY.items():
        if entry.section and isinstance(recipe.get(entry.section), Mapping):
            return name
    return DEFAULT
