"""A job that runs on this machine reads the recipe's model and data from it: an absolute path
there that does not exist is an error before torchrun starts (not minutes into the job)."""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Iterator, Mapping
from typing import Any

from hyperpod_launcher.util.errors import UserError

# Keys a recipe reads its inputs from: model weights and config, data, a start checkpoint.
READ_KEY = re.compile(
    r"(^|\.)data\.|(^|\.)(hf_model_name_or_path|model_config|resume_from_checkpoint|tokenizer\w*)$"
)


def _leaves(node: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(node, Mapping):
        for key, value in node.items():
            yield from _leaves(value, f"{prefix}{key}.")
    elif isinstance(node, list):
        for item in node:
            yield from _leaves(item, prefix)
    else:
        yield prefix.rstrip("."), node


def _exists(path: str) -> bool:
    # A Megatron data prefix names files <prefix>.bin and <prefix>.idx.
    return os.path.exists(path) or bool(glob.glob(glob.escape(path) + ".*"))


def check(recipe: Mapping[str, Any]) -> None:
    for key, value in _leaves(recipe):
        if not (isinstance(value, str) and value.startswith("/") and READ_KEY.search(key)):
            continue
        if not _exists(value):
            raise UserError(
                f"recipes.{key}={value!r}: no such file or folder on this machine; "
                "cluster=local reads it from here (give an existing path)"
            )
