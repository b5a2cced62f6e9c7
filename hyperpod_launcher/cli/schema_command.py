"""`hyperpod-launch schema [NAME] [--all DIR]`: print or write the JSON Schemas."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_schema(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "name", nargs="?", default="config", help="config, cluster/<name> or recipe-kind/<kind>"
    )
    parser.add_argument("--all", metavar="DIR", help="write every schema as DIR/<name>.json")
    parser.set_defaults(run=schema)


def schema(args: argparse.Namespace) -> int:
    from hyperpod_launcher.config import json_schema

    if args.all:
        root = Path(args.all)
        for name in json_schema.all_names():
            path = root / f"{name}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(json_schema.document(name), indent=2) + "\n")
            print(path)
        return 0
    print(json.dumps(json_schema.document(args.name), indent=2))
    return 0
