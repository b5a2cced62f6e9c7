"""`hyperpod-launch schema [NAME] [--all DIR]`: print or write the JSON Schemas."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

OLD_STACK_PREFIX = "recipe-kind/"  # the name stack schemas had before; still accepted


def add_schema(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "name", nargs="?", default="config", help="config, cluster/<name> or stack/<name>"
    )
    parser.add_argument("--all", metavar="DIR", help="write every schema as DIR/<name>.json")
    parser.set_defaults(run=schema)


def all_names() -> list[str]:
    from hyperpod_launcher import backends, stacks

    clusters = [f"cluster/{b}" for b in backends.names()]
    return ["config", *clusters, *(f"stack/{k}" for k in stacks.names())]


def document(name: str) -> dict[str, Any]:
    """The schema of `config`, `cluster/<backend>` or `stack/<stack>` (its recipes' keys)."""
    from hyperpod_launcher import backends, stacks
    from hyperpod_launcher.config import schema
    from hyperpod_launcher.config.json_schema import DRAFT, section
    from hyperpod_launcher.util.errors import UserError, did_you_mean

    if name.startswith(OLD_STACK_PREFIX):
        name = "stack/" + name.removeprefix(OLD_STACK_PREFIX)
    group, _, which = name.partition("/")
    names = all_names()
    if name not in names:
        raise UserError(
            f"schema {name}: unknown{did_you_mean(name, names)}; allowed: {', '.join(names)}"
        )
    if group == "config":
        body = section(schema.LauncherConfig, top=True)
    elif group == "cluster":
        body = section(backends.options_schema(which), top=True)
    else:
        body = section(stacks.get(which).recipe_schema(), top=True)
    return {"$schema": DRAFT, "$id": f"hyperpod-launcher/{name}.json", "title": name, **body}


def schema(args: argparse.Namespace) -> int:
    if args.all:
        root = Path(args.all)
        for name in all_names():
            path = root / f"{name}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(document(name), indent=2) + "\n")
            print(path)
        return 0
    print(json.dumps(document(args.name), indent=2))
    return 0
