"""The recipe catalog: which recipes exist, what each one is, and composing many at once.

A recipe is any config under recipes_collection/recipes/ except the composition pieces in
`_base/`. Recipes with `# @package _global_` (custom-script examples) set top-level keys.

`Composer.many` composes catalog recipes with Hydra's compose API in batches: each recipe is
added to one compose call under its own package (`+recipes@<slot>=<name>`), so Hydra's fixed
cost per call is paid once per batch instead of once per recipe, and each recipe is then
resolved inside the same top-level config `python main.py recipes=<name>` would build. Recipes
therefore use relative interpolations (`${..trainer.max_steps}`) for their own keys.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from typing import Any, cast

from hyperpod_launcher import stacks
from hyperpod_launcher.spec import build as job_build
from hyperpod_launcher.spec import recipe_checks
from hyperpod_launcher.util import resources
from hyperpod_launcher.util.dotted import get as _get
from hyperpod_launcher.util.errors import UserError, did_you_mean

PARTS = "_base"
GLOBAL_HEADER = "# @package _global_"
SLOT = "_hpl_catalog"  # where a batch compose puts each recipe
BATCH = 8  # recipes per compose call: Hydra re-parents the whole config on every merge


@cache
def recipe_names() -> tuple[str, ...]:
    """Every selectable recipe (`recipes=<name>`), sorted."""
    root = resources.recipes_dir()
    names = []
    for path in root.rglob("*.yaml"):
        rel = path.relative_to(root).with_suffix("")
        if rel.parts[0] != PARTS:
            names.append(rel.as_posix())
    return tuple(sorted(names))


@cache
def is_global(name: str) -> bool:
    """Custom-script examples set top-level keys (`# @package _global_`), not `recipes.*`."""
    path = resources.recipes_dir() / f"{name}.yaml"
    with open(path, encoding="utf-8") as handle:
        head = [handle.readline().strip() for _ in range(3)]
    return GLOBAL_HEADER in head


def check_name(name: str) -> str:
    """The recipe name without `.yaml`; a UserError naming the nearest recipes otherwise."""
    name = name.removeprefix("recipes=").removesuffix(".yaml").strip("/")
    names = recipe_names()
    if name in names:
        return name
    hint = did_you_mean(name, names) or did_you_mean(Path(name).name, [Path(n).name for n in names])
    raise UserError(f"recipes={name}: unknown recipe{hint}; see `hyperpod-launch recipes list`")


def summary_line(name: str) -> str:
    """The recipe file's first comment sentence (its one-line description)."""
    path = resources.recipes_dir() / f"{name}.yaml"
    lines = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if not line.startswith("#"):
                break
            if not line.startswith("# @package"):
                lines.append(line[1:].strip())
    return " ".join(lines).split(". ")[0].rstrip(".")


@dataclass(frozen=True)
class RecipeInfo:
    """What `recipes list` shows about one recipe, taken from its composed config."""

    name: str
    family: str
    method: str  # pretrain | fine-tuning | lora | qlora | custom; open recipes: sft | dpo | grpo
    stack: str  # its training stack (the stacks registry)
    accelerator: str  # gpu | neuron | any
    instance_type: str | None
    nodes: int
    devices: int
    parallelism: str
    run_name: str
    summary: str
    peft: str = "-"  # full | lora | qlora ("-": pretraining and custom scripts)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def family_of(name: str) -> str:
    parts = name.split("/")
    top = ("training", "fine-tuning", "evaluation")
    return parts[1] if len(parts) >= 3 and parts[0] in top else parts[0]


def peft_of(name: str, recipe: Mapping[str, Any]) -> str:
    peft = _get(recipe, "model.peft.peft_type") or _get(
        recipe, "training_config.model.peft.peft_scheme"
    )
    if peft:
        return "qlora" if str(peft).startswith("qlora") else "lora"
    return "-" if method_of(name, recipe) in ("pretrain", "evaluation", "distillation") else "full"


def method_of(name: str, recipe: Mapping[str, Any], stack: str | None = None) -> str:
    own = stacks.get(stack or stacks.of(recipe))
    if own.method is not None:  # the stack states it
        return own.method(recipe)
    peft = _get(recipe, "model.peft.peft_type")
    if peft:
        return "qlora" if str(peft).startswith("qlora") else "lora"
    if _get(recipe, "model.do_finetune") or name.startswith("fine-tuning/"):
        return "fine-tuning"
    return "pretrain"


def describe(name: str, cfg: Mapping[str, Any]) -> RecipeInfo:
    """RecipeInfo from the resolved top-level config of `recipes=<name>`."""
    recipe = cfg.get("recipes")
    if not isinstance(recipe, Mapping):  # custom-script example
        custom = _get(cfg, "training_cfg") or {}
        run = custom.get("run") or {}
        entry = (custom.get("entry_script"), custom.get("module"))
        return RecipeInfo(
            name=name,
            family=family_of(name),
            method="custom",
            stack=stacks.SCRIPT,
            accelerator="any",
            instance_type=None,
            nodes=int(run.get("nodes") or 1),
            devices=int(run.get("ntasks_per_node") or cfg.get("cpu_processes") or 1),
            parallelism="-",
            run_name=str(run.get("name") or job_build.name_from_entry(*entry)),
            summary=summary_line(name),
        )
    nodes = int(_get(recipe, "trainer.num_nodes", 1))
    devices = int(_get(recipe, "trainer.devices", 1))
    instance_type = _get(recipe, "run.instance_type")
    stack = stacks.of(recipe)
    own = stacks.get(stack)
    if own.size is not None:  # a stack that sizes its own jobs
        nodes, devices, instance_type = own.size(recipe)
    try:
        parallelism = str(recipe_checks.layout(recipe, nodes, devices, stack))
    except UserError as err:
        parallelism = f"invalid: {err}"
    return RecipeInfo(
        name=name,
        family=family_of(name),
        method=method_of(name, recipe, stack),
        stack=stack,
        accelerator=own.accelerator,
        instance_type=instance_type,
        nodes=nodes,
        devices=devices,
        parallelism=parallelism,
        run_name=str(_get(recipe, "run.name", "")),
        summary=summary_line(name),
        peft=peft_of(name, recipe),
    )


def _retarget(override: str, prefix: str) -> str:
    """`recipes.x=1` -> `<prefix>.x=1` (also with +, ++ or ~), for a recipe in a batch slot."""
    sign = override[: len(override) - len(override.lstrip("+~"))]
    body = override[len(sign) :]
    if not body.startswith("recipes."):
        raise ValueError(f"per-recipe override must set recipes.*: {override!r}")
    return f"{sign}{prefix}.{body[len('recipes.') :]}"


def _apply_keyed(cfg: Any, overrides: Sequence[str]) -> None:
    """Set existing keys of a composed recipe from `recipes.<key>=<value>` overrides, values
    parsed as Hydra parses them."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import OmegaConf

    if not overrides:
        return
    absent = object()
    for override in OverridesParser.create().parse_overrides(list(overrides)):
        key = override.key_or_group.removeprefix("recipes.")
        exists = OmegaConf.select(cfg, key, default=absent, throw_on_resolution_failure=False)
        if override.is_add() or override.is_delete() or exists is absent:
            raise ValueError(f"keyed override must set an existing key: {override.input_line}")
        OmegaConf.update(cfg, key, override.value(), merge=False)


class Composer:
    """Hydra's compose API over the shipped recipes_collection (use as a context manager)."""

    def __init__(self) -> None:
        self._context: Any = None

    def __enter__(self) -> Composer:
        from hydra import initialize_config_dir

        from hyperpod_launcher.config import resolvers

        resolvers.register()
        self._context = initialize_config_dir(str(resources.config_dir()), version_base=None)
        self._context.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._context.__exit__(*exc)

    def raw(self, overrides: Sequence[str]) -> Any:
        from hydra import compose

        return compose("config", overrides=list(overrides), return_hydra_config=False)

    def one(self, name: str, overrides: Sequence[str] = ()) -> dict[str, Any]:
        """The resolved config of `python main.py recipes=<name> <overrides>` (no hydra node)."""
        from omegaconf import OmegaConf

        cfg = self.raw([f"recipes={name}", *overrides])
        return OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)  # type: ignore[return-value]

    def many(
        self,
        names: Sequence[str],
        overrides: Sequence[str] = (),
        per_recipe: Mapping[str, Sequence[str]] | None = None,
        keyed: Callable[[str, Mapping[str, Any]], Sequence[str]] | None = None,
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """(name, resolved config) for each recipe, as `one` would give, composed in batches.

        `overrides` apply to every config (not recipes.*); `per_recipe[name]` are recipes.*
        overrides for one recipe. `keyed(name, recipe)` returns `recipes.<key>=<value>`
        overrides of keys the composed recipe has (e.g. the launch scripts' placeholders),
        applied before resolving. Custom-script examples are composed one by one.
        """
        from omegaconf import OmegaConf

        per_recipe = per_recipe or {}
        top = OmegaConf.to_container(self.raw(["~recipes", *overrides]), resolve=False)
        assert isinstance(top, dict)
        top = cast(dict[str, Any], top)  # a config's keys are strings
        refs = _recipe_refs(top)
        batched = [n for n in names if not is_global(n)]
        for name in names:
            if is_global(name):
                yield name, self.one(name, [*overrides, *per_recipe.get(name, ())])
        for start in range(0, len(batched), BATCH):
            batch = batched[start : start + BATCH]
            args = ["~recipes", *overrides]
            for i, name in enumerate(batch):
                args.append(f"+recipes@{SLOT}.r{i}={name}")
                args += [_retarget(o, f"{SLOT}.r{i}") for o in per_recipe.get(name, ())]
            composed = self.raw(args)
            for i, name in enumerate(batch):
                node = composed[SLOT][f"r{i}"]
                if keyed is not None:
                    _apply_keyed(node, keyed(name, node))
                # Resolved in place: the batch's top-level keys are the launch's top-level keys.
                recipe = OmegaConf.to_container(node, resolve=True, throw_on_missing=True)
                yield name, _with_top(top, refs, recipe)  # type: ignore[arg-type]


def _recipe_refs(top: Mapping[str, Any]) -> set[str] | None:
    """Recipe sections that top-level interpolations read (`${oc.select:recipes.run.x,...}`);
    None when some reference names no section (then the whole recipe is needed)."""
    found: set[str] = set()

    def walk(value: Any) -> bool:
        if isinstance(value, Mapping):
            return all(walk(v) for v in value.values())
        if isinstance(value, list):
            return all(walk(v) for v in value)
        if isinstance(value, str) and "recipes" in value:
            sections = re.findall(r"\brecipes\.(\w+)", value)
            found.update(sections)
            return len(sections) == value.count("recipes")
        return True

    return found if walk(top) else None


def _with_top(
    top: Mapping[str, Any], refs: set[str] | None, recipe: dict[str, Any]
) -> dict[str, Any]:
    """The resolved top-level config of a launch of `recipe` (whose values are resolved)."""
    from omegaconf import OmegaConf

    seen = recipe if refs is None else {k: recipe[k] for k in refs if k in recipe}
    resolved = OmegaConf.to_container(
        OmegaConf.create({**top, "recipes": seen}), resolve=True, throw_on_missing=True
    )
    assert isinstance(resolved, dict)
    resolved["recipes"] = recipe
    return cast(dict[str, Any], resolved)  # a config's keys are strings


def _cache_file(names: Sequence[str]) -> Path | None:
    """A cache of `recipes list` facts, keyed by the recipe files' names, sizes and mtimes."""
    import hashlib

    from hyperpod_launcher import __version__

    root = resources.config_dir()
    digest = hashlib.sha256(__version__.encode())
    for path in sorted(root.rglob("*.yaml")):
        stat = path.stat()
        digest.update(f"{path.relative_to(root)}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    digest.update(",".join(names).encode())
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "hyperpod-launcher" / f"catalog-{digest.hexdigest()[:16]}.json"


def infos(names: Sequence[str] | None = None) -> list[RecipeInfo]:
    """RecipeInfo for every recipe (composed once, then cached until a config file changes)."""
    import json

    names = list(names or recipe_names())
    cache_path = _cache_file(names)
    if cache_path is not None and cache_path.is_file():
        try:
            return [RecipeInfo(**row) for row in json.loads(cache_path.read_text())]
        except (ValueError, TypeError):
            pass
    with Composer() as composer:
        result = [describe(name, cfg) for name, cfg in composer.many(names)]
    result.sort(key=lambda info: names.index(info.name))
    if cache_path is not None:
        try:
            cache_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache_path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps([i.as_dict() for i in result]))
            os.replace(tmp, cache_path)
        except OSError:
            pass  # a read-only home only costs speed
    return result
