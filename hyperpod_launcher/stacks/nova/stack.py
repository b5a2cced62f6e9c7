"""Amazon Nova: AWS's images read the recipe and lay themselves out; the launcher checks the
sizes its model and method allow and builds a job of services (spec/nova.py)."""

from __future__ import annotations

from hyperpod_launcher.stacks import nova
from hyperpod_launcher.stacks.base import Layout, Recipe, Stack


def layout(recipe: Recipe, nodes: int, devices: int) -> Layout:
    nova.check(recipe)
    return Layout(nova.NAME, nodes * devices, notes=(f"Nova {nova.method_of(recipe)}",))


def size(recipe: Recipe) -> tuple[int, int, str]:
    """Sized by its services' replicas."""
    job = nova.job(recipe)
    return job.nodes, job.services[0].devices, nova.INSTANCE_TYPE


STACK = Stack(
    name=nova.NAME,
    schema="hyperpod_launcher.stacks.nova.schema:NovaRecipe",
    layout=layout,
    method=nova.method_of,
    size=size,
    own_job="hyperpod_launcher.spec.nova:build",
)
