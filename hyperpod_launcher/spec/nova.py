"""The JobSpec of an Amazon Nova recipe (job_build's recipe mode, for the nova stack).

Nova jobs run AWS's images on p5.48xlarge nodes: no code checkout, no entry script, no
per-node script of ours. The spec carries the services (nova.NovaJob) the backend places.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from hyperpod_launcher import backends, stacks
from hyperpod_launcher.config import instances
from hyperpod_launcher.config.validate import check_section, typed
from hyperpod_launcher.spec.job import CodeSource, Entry, JobSpec, Secrets
from hyperpod_launcher.spec.values import SAFE_NAME, split_env
from hyperpod_launcher.stacks import nova
from hyperpod_launcher.util import yaml_text
from hyperpod_launcher.util.errors import UserError

INSTANCE_TYPE = nova.INSTANCE_TYPE


def check_backend(backend: str, recipe_choice: str | None) -> None:
    """A stack that only some backends run is one line on the others."""
    allowed = backends.runs_stack(nova.NAME)
    if backend not in allowed:
        raise UserError(
            f"cluster={backend}: recipes={recipe_choice} is an Amazon Nova recipe, which runs "
            f"only on cluster={' or cluster='.join(allowed)} (SageMaker HyperPod EKS)"
        )


def _env(env_vars: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    plain, secret = split_env(env_vars, {})
    if secret:
        raise UserError(
            f"env_vars.{sorted(secret)[0]}: Nova jobs take no secrets (AWS's images read "
            "nothing of the launcher's Secret); drop it"
        )
    return tuple(plain.items())


def build(
    launch: Any, recipe: dict[str, Any], added: frozenset[str], origin: str
) -> tuple[JobSpec, Secrets]:
    """`launch` is job_build's checked launcher settings; `recipe` the resolved recipe."""
    check_backend(launch.backend, launch.recipe_choice)
    check_section(recipe, stacks.get(nova.NAME).recipe_schema(), "recipes", added=added)
    nova.check(recipe)
    cfg = launch.cfg
    name = recipe.get("run", {}).get("name")
    if not isinstance(name, str) or not SAFE_NAME.match(name):
        raise UserError(
            f"recipes.run.name={name!r} is not a safe job name: use letters, digits, '.', '_' "
            "or '-', starting with a letter or digit, at most 120 characters"
        )
    image = cfg.get("container")
    if not image:
        raise UserError(
            "container is not set: Nova jobs run AWS's Nova training image for the recipe's "
            "method; set container=<image URI>"
        )
    chosen = cfg.get("instance_type")
    if chosen and instances.normalize(str(chosen)) != INSTANCE_TYPE:
        raise UserError(
            f"instance_type={chosen}: Nova jobs run only on ml.{INSTANCE_TYPE} nodes; drop "
            "instance_type or set it to that"
        )
    job = nova.job(recipe)
    job_dir = f"{launch.results_root}/{name}"
    spec = JobSpec(
        name=name,
        launch_id=launch.launch_id,
        backend=launch.backend,
        mode="recipe",
        recipe=launch.recipe_choice,
        nodes=job.nodes,
        procs_per_node=job.services[0].devices,
        accelerator="gpu",
        instance_type=INSTANCE_TYPE,
        instance=instances.lookup(INSTANCE_TYPE),
        image=str(image),
        mounts=(),
        env=_env(cfg.get("env_vars") or {}),
        secret_env=(),
        entry=Entry(None, None),
        code=CodeSource(),
        workdir=job_dir,
        job_dir=job_dir,
        results_root=launch.results_root,
        exp_dir=None,
        recipe_file=f"{name}_hydra.yaml",
        recipe_yaml=yaml_text.dump(copy.deepcopy(recipe)),
        time_limit=None,
        neuron_compile=False,
        opts=typed(launch.opts, backends.options_schema(launch.backend)),
        max_restarts=cfg.get("max_restarts", 0),  # checked by the schema
        origins=(origin, f"instance_type={INSTANCE_TYPE}: Nova"),
        nova=job,
        stack=nova.NAME,
    )
    return spec, Secrets()
