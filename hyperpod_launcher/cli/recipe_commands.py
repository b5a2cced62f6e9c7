"""`hyperpod-launch recipes list|show`: browse the recipe catalog.

Nothing here imports a cloud SDK, and only `recipes show` (and a `recipes list` with a cold
cache) loads Hydra.
"""

from __future__ import annotations

import argparse
import copy
import sys
from collections.abc import Sequence
from typing import Any

from hyperpod_launcher.cli.table import format_table
from hyperpod_launcher.util.errors import UserError, did_you_mean

METHODS = ("pretrain", "fine-tuning", "lora", "qlora", "custom", "sft", "dpo", "grpo")
PEFT = ("full", "lora", "qlora")
ACCELERATORS = ("gpu", "neuron")


def _one_of(value: str | None, allowed: Sequence[str], flag: str) -> None:
    if value is not None and value not in allowed:
        raise UserError(
            f"{flag}={value}: unknown{did_you_mean(value, allowed)}; allowed: {', '.join(allowed)}"
        )


def recipes_list(args: argparse.Namespace) -> int:
    from hyperpod_launcher.catalog import recipes as catalog
    from hyperpod_launcher.config import instances

    infos = catalog.infos()
    _one_of(args.family, sorted({i.family for i in infos}), "--family")
    _one_of(args.method, METHODS, "--method")
    _one_of(args.peft, PEFT, "--peft")
    _one_of(args.accelerator, ACCELERATORS, "--accelerator")
    instance = None
    if args.instance is not None:
        instance = instances.normalize(args.instance)
        _one_of(instance, sorted(instances.INSTANCES), "--instance")
    rows = [
        i
        for i in infos
        if (args.family is None or i.family == args.family)
        and (args.method is None or i.method == args.method)
        and (args.peft is None or i.peft == args.peft)
        and (args.accelerator is None or i.accelerator == args.accelerator)
        and (instance is None or i.instance_type == instance)
    ]
    if args.json:
        import json

        print(json.dumps([i.as_dict() for i in rows], indent=2))
        return 0
    table = [("RECIPE", "METHOD", "ACCEL", "PEFT", "INSTANCE", "NODES", "PARALLELISM")]
    for i in rows:
        nodes = f"{i.nodes}x{i.devices}"
        instance = i.instance_type or "-"
        table.append((i.name, i.method, i.accelerator, i.peft, instance, nodes, i.parallelism))
    print(format_table(table))
    print(f"{len(rows)} of {len(infos)} recipes", file=sys.stderr)
    return 0


def _checks(recipe: dict[str, Any], cfg: dict[str, Any], info: Any) -> str:
    """'ok on <instance>' or the first problem, as a launch would report it."""
    from hyperpod_launcher import stacks
    from hyperpod_launcher.config import instances
    from hyperpod_launcher.config.validate import check_section
    from hyperpod_launcher.spec import recipe_checks

    instance_type = cfg.get("instance_type") or info.instance_type
    instance = instances.lookup(instance_type)
    try:
        schema = stacks.get(info.stack).recipe_schema()
        check_section(recipe, schema, "recipes", added=())
        force_fp8 = bool(cfg.get("force_fp8"))
        recipe_checks.check_instance(recipe, instance, force_fp8, stack=info.stack)
        recipe_checks.check(recipe, nodes=info.nodes, devices=info.devices, stack=info.stack)
    except UserError as err:
        return f"fails: {err}"
    return f"ok on {instance_type}" if instance_type else "ok"


def recipes_show(args: argparse.Namespace) -> int:
    from hyperpod_launcher.catalog import recipes as catalog
    from hyperpod_launcher.spec import build as job_build
    from hyperpod_launcher.util import yaml_text

    name = catalog.check_name(args.name)
    for override in args.overrides:
        if "=" not in override:
            raise UserError(
                f"{override!r}: overrides look like key=value (e.g. recipes.run.name=x)"
            )
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from hyperpod_launcher.cli.hydra_errors import one_line

    try:
        with catalog.Composer() as composer:
            cfg = composer.one(name, args.overrides)
    except (HydraException, OmegaConfBaseException) as err:
        raise UserError(one_line(err, args.overrides)) from None
    info = catalog.describe(name, cfg)
    recipe = cfg.get("recipes")
    lines = [
        f"recipe:      {name}",
        f"about:       {info.summary}",
        f"kind:        {info.method} / {info.stack} / {info.accelerator} (family {info.family})",
        f"instance:    {info.instance_type or '-'}"
        + (f" (launch with instance_type={info.instance_type})" if info.instance_type else ""),
        f"nodes:       {info.nodes} x {info.devices} devices = world {info.nodes * info.devices}",
        "parallelism: "
        + (
            "does not fit (see checks)"
            if info.parallelism.startswith("invalid")
            else info.parallelism
        ),
    ]
    if isinstance(recipe, dict):
        lines.append(f"checks:      {_checks(recipe, cfg, info)}")
        shown = copy.deepcopy(recipe)
        job_build.strip_recipe_secrets(shown)  # the token, if given, shows as its env reference
        body: Any = shown
    else:
        body = {"training_cfg": cfg.get("training_cfg"), "git": cfg.get("git")}
    if args.schema:
        print("\n".join(f"# {line}" for line in [*lines, _rules_note(info.stack)]))
        print("\n".join(_key_rule_lines(recipe, cfg, info.stack)))
        return 0
    print("\n".join(f"# {line}" for line in lines))
    print(yaml_text.dump(body), end="")
    return 0


def _rules_note(stack: str) -> str:
    return f"rules:       `# ...` after each key (hyperpod-launch schema stack/{stack})"


def _key_rule_lines(recipe: Any, cfg: dict[str, Any], stack: str) -> list[str]:
    """`dotted.key: value  # type and range` per key (still YAML: a list or text value goes on
    below its key); secrets masked as in the YAML view."""
    from hyperpod_launcher import stacks
    from hyperpod_launcher.config.validate import key_rules
    from hyperpod_launcher.spec import build as job_build
    from hyperpod_launcher.util import yaml_text

    schema = stacks.get(stack).recipe_schema()
    if isinstance(recipe, dict):
        shown = copy.deepcopy(recipe)
        job_build.strip_recipe_secrets(shown)
        rows = key_rules(shown, schema, "recipes")
    else:
        rows = key_rules(cfg.get("training_cfg") or {}, schema, "training_cfg")
    lines = []
    for key, value, rule in rows:
        first, *rest = yaml_text.dump({key: value}).splitlines()
        lines += [f"{first}  # {rule}", *rest]
    return lines


def add_recipes(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="recipes with their scale and parallelism")
    listing.add_argument("--family", help="model family (llama, mistral, mixtral, hf, ...)")
    listing.add_argument("--method", help=f"one of {', '.join(METHODS)}")
    listing.add_argument("--peft", help=f"weights trained: one of {', '.join(PEFT)}")
    listing.add_argument("--accelerator", help=f"one of {', '.join(ACCELERATORS)}")
    listing.add_argument("--instance", help="instance type the recipe is sized for")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(run=recipes_list)
    show = actions.add_parser("show", help="a recipe resolved: nodes, devices, parallelism, YAML")
    show.add_argument(
        "name", help="recipe name, e.g. training/llama/hf_llama3_8b_seq8k_gpu_p5x16_pretrain"
    )
    show.add_argument(
        "overrides", nargs="*", help="Hydra overrides, e.g. recipes.trainer.num_nodes=4"
    )
    show.add_argument(
        "--schema",
        action="store_true",
        help="one line per key with its value, type and range instead of the YAML",
    )
    show.set_defaults(run=recipes_show)
