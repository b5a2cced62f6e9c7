"""Render every recipe on every registered backend in one process (the catalog-wide dry run).

Each recipe is composed once (catalog.Composer.many, with the launch scripts' placeholder values),
then built and rendered per backend from that one composition, with the backend's own cluster
file. Nothing is written: the result holds each backend's Request files, or the one-line
refusal when a backend cannot run a recipe (e.g. cluster=local and a multi-node recipe).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from hyperpod_launcher import backends
from hyperpod_launcher.backends.base import Request
from hyperpod_launcher.catalog import launch_scripts as gen_launch_scripts
from hyperpod_launcher.catalog import recipes as catalog
from hyperpod_launcher.spec import job
from hyperpod_launcher.spec.build import build, launch_options
from hyperpod_launcher.util.errors import UserError

# The launch scripts' placeholders, with values, so every recipe is complete.
PLACEHOLDERS = {
    "TRAIN_DIR": "/fsx/data/train",
    "VAL_DIR": "/fsx/data/val",
    "EXP_DIR": "/fsx/exp",
    "MODEL_CONFIG": "/fsx/models/base/config.json",
    "RESUME_FROM_CHECKPOINT": "/fsx/checkpoints/base",
    "TOKENIZER_TYPE": "/fsx/models/base",
    "HF_MODEL_NAME_OR_PATH": "/fsx/models/base",
    "HF_ACCESS_TOKEN": "hf_catalog_dry_run_token",
}


@dataclass(frozen=True)
class Outcome:
    recipe: str
    backend: str
    spec: job.JobSpec | None
    request: Request | None
    refused: str | None = None  # the UserError a launch would print


def backend_names() -> tuple[str, ...]:
    return backends.names()


def _cluster_sections(composer: catalog.Composer, names: Iterable[str]) -> dict[str, dict]:
    """name -> resolved top-level config (without recipes) for each backend, from one compose
    that adds every cluster file under its own package (Hydra's fixed cost is paid once)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import OmegaConf

    names = list(names)
    args: list[str] = ["~recipes"]
    top_level: dict[str, list[str]] = {}
    for name in names:
        args.append(f"+cluster@{catalog.SLOT}.{name}={name}")
        top_level[name] = []
        for override in backends.entry(name).catalog_overrides:
            sign = override[: len(override) - len(override.lstrip("+~"))]
            body = override[len(sign) :]
            if body.startswith("cluster."):
                args.append(f"{sign}{catalog.SLOT}.{name}.{body[len('cluster.') :]}")
            else:
                top_level[name].append(override)
    resolved = OmegaConf.to_container(composer.raw(args), resolve=True)
    assert isinstance(resolved, dict)
    clusters = resolved.pop(catalog.SLOT)
    sections = {}
    for name in names:
        section = {**resolved, "cluster": clusters[name]}
        for parsed in OverridesParser.create().parse_overrides(top_level[name]):
            section[parsed.key_or_group] = parsed.value()
        sections[name] = section
    return sections


@contextmanager
def _token_env(token: str | None) -> Iterator[None]:
    """HF_TOKEN as a launch script exports it, while the recipes resolve."""
    saved = os.environ.get("HF_TOKEN")
    if token:
        os.environ["HF_TOKEN"] = token
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("HF_TOKEN", None)
        else:
            os.environ["HF_TOKEN"] = saved


def _moved(node: Any, paths: tuple[tuple[str, str], ...]) -> Any:
    """The recipe with its placeholder paths as the backend's jobs see them (build copies
    what it changes, so an unchanged recipe is shared)."""
    if not paths:
        return node
    if isinstance(node, Mapping):
        return {k: _moved(v, paths) for k, v in node.items()}
    if isinstance(node, list):
        return [_moved(v, paths) for v in node]
    if isinstance(node, str):
        for prefix, replacement in paths:
            if node.startswith(prefix):
                return replacement + node[len(prefix) :]
    return node


def _with_defaults(full: dict[str, Any], backend: str, name: str) -> dict[str, Any]:
    """The backend's defaults for missing required values, as a launch fills them in."""
    import copy

    from hyperpod_launcher import stacks
    from hyperpod_launcher.spec import required
    from hyperpod_launcher.util import dotted

    full = {**full, "recipes": copy.deepcopy(full["recipes"])}

    def put(key: str, value: str) -> None:
        *parents, leaf = key.split(".")
        node = full
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value

    stack = stacks.of(full["recipes"])
    entry = backends.entry(backend)
    if stack in entry.own_stacks:  # they bring their own chart: the catalog's cluster options
        added = {  # (e.g. a claim for the placeholder paths) are not theirs
            o.lstrip("+~").split("=", 1)[0].removeprefix("cluster.")
            for o in entry.catalog_overrides
            if o.lstrip("+~").startswith("cluster.")
        }
        full["cluster"] = {k: v for k, v in full["cluster"].items() if k not in added}
    required.apply_defaults(lambda key: dotted.get(full, key), put, stack, backend, name)
    return full


def run(
    names: Sequence[str] | None = None,
    backend_list: Sequence[str] | None = None,
    placeholders: Mapping[str, str] = PLACEHOLDERS,
    timings: dict[str, float] | None = None,
) -> list[Outcome]:
    """Every recipe on every backend; `timings` (if given) gets the compose/render seconds."""
    start = time.perf_counter()
    names = list(names or catalog.recipe_names())
    backend_list = list(backend_list or backend_names())
    outcomes: list[Outcome] = []
    with catalog.Composer() as composer, _token_env(placeholders.get("HF_ACCESS_TOKEN")):
        sections = _cluster_sections(composer, backend_list)
        composed = dict(
            composer.many(
                names,
                keyed=lambda _, recipe: gen_launch_scripts.placeholder_overrides(
                    recipe, placeholders
                ),
            )
        )
        # Custom-script examples set top-level keys: compose each once, then lay the keys it
        # sets over each backend's top level.
        custom = [n for n in names if not isinstance(composed[n].get("recipes"), Mapping)]
        if custom:
            from omegaconf import OmegaConf

            default = OmegaConf.to_container(composer.raw(["~recipes"]), resolve=True)
            assert isinstance(default, dict)
            for name in custom:
                composed[name] = {
                    k: v
                    for k, v in composed[name].items()
                    if k != "cluster" and default.get(k) != v
                }
    composed_at = time.perf_counter()
    renderers = {name: backends.get(name) for name in backend_list}
    for name in names:
        for backend in backend_list:
            if name in custom:
                full = {**sections[backend], **composed[name]}
            else:
                recipe = composed[name]["recipes"]
                hint = (recipe.get("run") or {}).get("instance_type")  # what it is sized for
                full = {**sections[backend], "instance_type": hint}
                full["recipes"] = _moved(recipe, backends.entry(backend).catalog_paths)
                full = _with_defaults(full, backend, name)
            try:
                spec, secrets = build(
                    full,
                    cluster_choice=backend,
                    recipe_choice=name,
                    launch_id="catalog",
                    this_machine=False,
                )
                renderers[backend].validate(spec)
                request = renderers[backend].render(spec, launch_options(full, (), spec, secrets))
            except UserError as err:
                outcomes.append(Outcome(name, backend, None, None, str(err)))
                continue
            outcomes.append(Outcome(name, backend, spec, request))
    if timings is not None:
        timings["compose"] = composed_at - start
        timings["build_render"] = time.perf_counter() - composed_at
    return outcomes
