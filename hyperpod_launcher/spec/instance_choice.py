"""Which instance type a launch uses, and why (for the summary line).

The command line's `instance_type` wins; without it a recipe runs on the instance it is sized
for (`recipes.run.instance_type`), as HyperPod's launch scripts pass it. `instance_type=none`
opts out: plain nodes with `recipes.trainer.devices` processes each. Custom scripts without an
instance type and `cluster=local` (this machine is the hardware) use no instance type.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hyperpod_launcher import backends
from hyperpod_launcher.config import instances
from hyperpod_launcher.util.dotted import get

OPT_OUT = "none"


@dataclass(frozen=True)
class InstanceChoice:
    instance_type: str | None
    origin: str | None  # e.g. "instance_type=p5.48xlarge: recipes.run.instance_type"
    # With the opt-out, the accelerator of the instance the recipe is sized for: a GPU recipe
    # on plain nodes still asks Kubernetes for recipes.trainer.devices GPUs per pod.
    plain_accelerator: instances.Accelerator = "cpu"


def choose(requested: Any, recipe: Any, backend: str) -> InstanceChoice:
    sized_for = get(recipe, "run.instance_type") if isinstance(recipe, dict) else None
    if isinstance(requested, str) and requested.lower() == OPT_OUT:
        sized = instances.lookup(sized_for)
        accelerator = sized.accelerator if sized else "cpu"
        return InstanceChoice(None, f"instance_type={OPT_OUT}: plain nodes", accelerator)
    if requested:
        return InstanceChoice(requested, f"instance_type={requested}: command line")
    if sized_for and not backends.runs_here(backend):
        return InstanceChoice(
            str(sized_for), f"instance_type={sized_for}: recipes.run.instance_type"
        )
    return InstanceChoice(None, None)
