"""Values a recipe's training code needs at start, checked at launch.

The training code's own failure here is quiet or late: the adapter logs a missing `exp_dir` or
`train_dir` and exits 0 (so the job reads as succeeded), NxD Training needs its model config and
data folder (and, for fine-tuning data, the tokenizer, which it loads only after the compile
pass), and a continued-pretraining or Trainium fine-tuning run without a checkpoint starts
from random weights. (The open fine-tuning family's entry puts its outputs under the job
folder itself, and its stack's checks ask for its model and data.) Each stack lists its own
(`Stack.required`, in `stacks/<name>/stack.py`); where the backend has a real
default, `apply_defaults` fills it in before the config is resolved (so keys that interpolate
it follow) and says so. A value still missing is a one-line error for a launch that submits or
writes a job to submit later, and a warning for a dry run (which only shows the job).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from hyperpod_launcher import stacks
from hyperpod_launcher.stacks.base import Get


@dataclass(frozen=True)
class BackendDefaults:
    """What a backend fills in for a missing required value. Each backend's registry entry
    names its own (`Entry.required_defaults`); these functions read the unresolved config."""

    exp_dir: Callable[[Get], str | None] | None = None
    data_dir: Callable[[Get], str | None] | None = None
    data_dir_needs: str = ""  # what makes `data_dir` apply, where it can be absent
    # Storage every node of the job shares, for caches jobs reuse (compiled graphs, downloads).
    cache_dir: Callable[[Get], str | None] | None = None
    shared_needs: str = ""  # what gives `exp_dir` and `cache_dir` where they can be absent


def job_folder_exp(get: Get) -> str | None:
    """`<job folder>/exp`: where a backend that writes a job folder keeps the experiment."""
    base, name = get("base_results_dir"), get("recipes.run.name")
    if not base or not name:
        return None
    return os.path.join(os.path.abspath(os.path.expanduser(str(base))), str(name), "exp")


def job_folder_cache(get: Get) -> str | None:
    """`<job folder>/cache`: on a filesystem every node sees, as the job folder must be."""
    exp = job_folder_exp(get)
    return os.path.join(os.path.dirname(exp), "cache") if exp else None


JOB_FOLDER_DEFAULTS = BackendDefaults(exp_dir=job_folder_exp, cache_dir=job_folder_cache)


def shared_cache(backend: str, get: Get) -> str | None:
    """The one place that says where a backend's jobs keep the caches they reuse: Hugging Face
    downloads (`HF_HOME=<cache>/huggingface`) and the Neuron compile cache (`<cache>/neuron`).
    None: the backend has no storage its nodes share for this launch."""
    cache_dir = _defaults_of(backend).cache_dir
    return cache_dir(get) if cache_dir else None


def _defaults_of(backend: str) -> BackendDefaults:
    from hyperpod_launcher import backends
    from hyperpod_launcher.util import lazy

    try:
        return lazy.load(backends.entry(backend).required_defaults)
    except NotImplementedError:
        return BackendDefaults()


def _missing(value: Any) -> bool:
    return value is None or value == "" or value == []


def apply_defaults(
    get: Get, put: Callable[[str, str], None], stack: str, backend: str, name: str | None
) -> list[str]:
    """Set each missing required value this backend has a default for; return `key=value`
    lines for the launch summary. `get`/`put` read and write the unresolved config."""
    applied = []
    defaults = _defaults_of(backend)
    for need in stacks.get(stack).required:
        key = f"recipes.{need.key}"
        default_for = getattr(defaults, need.default) if need.default else None
        if default_for is None or not _missing(get(key)) or not need.applies(get, name):
            continue
        value = default_for(get)
        if value:
            value = os.path.join(value, need.under) if need.under else value
            put(key, value)
            applied.append(f"{key}={value}")
    return applied


def problems(recipe: Mapping[str, Any], stack: str, name: str | None, backend: str) -> list[str]:
    """One line for each required value the (resolved) recipe lacks."""
    from hyperpod_launcher.util.dotted import get as dotted_get

    def get(key: str) -> Any:  # the rules read only recipe keys
        return dotted_get(recipe, key.removeprefix("recipes."))

    found = []
    defaults = _defaults_of(backend)
    for need in stacks.get(stack).required:
        value = dotted_get(recipe, need.key)
        if _missing(value) and need.applies(get, name):
            shown = "null" if value is None else repr(value)
            fix = f"set recipes.{need.key}=... ({need.how})"
            if need.default == "data_dir" and defaults.data_dir_needs:
                fix += f" or {defaults.data_dir_needs}"
            elif need.default in ("exp_dir", "cache_dir") and defaults.shared_needs:
                fix += f" or {defaults.shared_needs}"
            found.append(f"recipes.{need.key}={shown}: the {stack} recipe needs {need.what}; {fix}")
    return found


def launch_defaults(cfg: Any, backend: str | None, name: str | None) -> list[str]:
    """apply_defaults on the composed OmegaConf config of a recipe launch, before resolving."""
    from omegaconf import OmegaConf

    recipe = OmegaConf.select(cfg, "recipes", default=None, throw_on_missing=False)
    if not isinstance(recipe, Mapping) or not recipe or backend is None:
        return []

    def get(key: str) -> Any:
        return OmegaConf.select(cfg, key, default=None, throw_on_missing=False)

    def put(key: str, value: str) -> None:
        OmegaConf.update(cfg, key, value, merge=False)

    return apply_defaults(get, put, stacks.of(recipe), backend, name)


def container_problems(stack: str, image: str | None, choice: str | None) -> list[str]:
    """One line when the recipe's training code is in a container and none is given (bare
    metal: `cluster=slurm` without `container=`)."""
    in_container = stacks.get(stack).in_container
    if in_container is None or image:
        return []
    why, example = in_container
    return [
        f"container is not set: recipes={choice} cannot run on bare metal ({why}); "
        f"set container=<image>, e.g. container={example}"
    ]


def cache_env(backend: str, cfg: Mapping[str, Any]) -> dict[str, str]:
    """`HF_HOME` on the shared cache for a recipe's job on a cluster backend (env_vars.HF_HOME
    wins); a job on this machine keeps the user's own cache, a custom script its own choice."""
    from hyperpod_launcher import backends
    from hyperpod_launcher.util.dotted import get as dotted_get

    if backends.runs_here(backend) or not dotted_get(cfg, "recipes.run.name"):
        return {}
    cache = shared_cache(backend, lambda key: dotted_get(cfg, key))
    return {"HF_HOME": os.path.join(cache, "huggingface")} if cache else {}
