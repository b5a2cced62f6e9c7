"""Recipe rules several stacks share: positive degrees, Megatron-style layouts, sequence
length, data locations. Each stack's `stack.py` puts them together with its own keys."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from hyperpod_launcher.config.rules import Count
from hyperpod_launcher.config.validate import check_value
from hyperpod_launcher.stacks.base import Layout, Recipe
from hyperpod_launcher.util.dotted import get as _get
from hyperpod_launcher.util.errors import UserError

URI = re.compile(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/\S*)?$")


def fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "null" if value is None else str(value)


def degree(recipe: Recipe, key: str, default: int = 1) -> int:
    value = _get(recipe, key)
    if value is None:
        return default
    return check_value(value, Count, f"recipes.{key}")


def world_text(nodes: int, devices: int, accelerator: str = "gpu") -> str:
    unit = "NeuronCores" if accelerator == "neuron" else "devices"
    return f"the world size {nodes * devices} ({nodes} nodes x {devices} {unit})"


def _product_text(degrees: Mapping[str, int]) -> str:
    return " x ".join(f"{k}{v}" for k, v in degrees.items())


def megatron_layout(
    recipe: Recipe, nodes: int, devices: int, stack: str, keys: dict[str, str], accelerator: str
) -> Layout:
    """World % (TP x PP [x CP]) and global batch % (micro batch x data parallel)."""
    world = nodes * devices
    degrees = {name: degree(recipe, key) for name, key in keys.items() if name != "batch"}
    product = 1
    for value in degrees.values():
        product *= value
    if world % product:
        name = "PP" if degrees.get("PP", 1) > 1 else "TP"
        raise UserError(
            f"recipes.{keys[name]}={degrees[name]}: {_product_text(degrees)} = {product} must "
            f"divide "
            f"{world_text(nodes, devices, accelerator)}"
        )
    dp = world // product
    micro_key, global_key = keys["batch"].split(",")
    micro = degree(recipe, micro_key)
    total = degree(recipe, global_key)
    if total % (micro * dp):
        raise UserError(
            f"recipes.{global_key}={total}: must be a multiple of micro batch {micro} x data "
            f"parallel {dp} = {micro * dp} (data parallel = world {world} / "
            f"{_product_text(degrees)})"
        )
    notes = [f"global batch {total} = micro {micro} x DP {dp} x {total // (micro * dp)} steps"]
    if _get(recipe, "distributed_strategy.zero1"):
        notes.insert(0, "ZeRO-1")
    return Layout(stack, world, {**degrees, "DP": dp}, tuple(notes))


def check_sequence(recipe: Recipe, seq_key: str, max_key: str) -> None:
    """The sequence length must not exceed the model's max position embeddings."""
    seq, limit = _get(recipe, seq_key), _get(recipe, max_key)
    if seq is None:
        return
    seq = degree(recipe, seq_key)
    if limit is not None and seq > degree(recipe, max_key):
        raise UserError(
            f"recipes.{seq_key}={seq}: the sequence length must not exceed "
            f"{max_key.rsplit('.', 1)[-1]} {limit}"
        )


def s3_problem(value: str) -> str | None:
    """Why an s3:// URI is not s3://<bucket>[/<prefix>] with a valid bucket name, or None."""
    if URI.match(value):
        return None
    bucket = value[len("s3://") :].split("/", 1)[0]
    return (
        f"bucket {bucket!r} is not an S3 bucket name (3-63 characters of lowercase letters, "
        "digits, '.' and '-', starting and ending with a letter or digit); expected "
        "s3://<bucket>/<prefix>"
    )


def _path_problem(value: Any) -> str | None:
    if not isinstance(value, str) or not value:
        return "must be a non-empty string"
    if any(c.isspace() for c in value):
        return "must not contain whitespace"
    if value.startswith("s3://"):
        return s3_problem(value)
    if "://" in value:
        return "only s3:// URIs are supported"
    if not value.startswith("/"):
        return "must be an absolute path or an s3:// URI (jobs do not run in this directory)"
    return None


def check_data(recipe: Recipe, keys: tuple[str, ...], weights: bool = False) -> None:
    """Data locations are absolute paths or s3:// URIs. `weights`: numbers in a list are
    blend weights (Megatron's data_prefix), not locations."""
    for key in keys:
        value = _get(recipe, key)
        items = value if isinstance(value, list) else [value]
        for item in items:
            if item is None or (weights and isinstance(item, (int, float))):
                continue  # unset, or a Megatron blend weight
            problem = _path_problem(item)
            if problem:
                raise UserError(f"recipes.{key}={fmt(value)}: {problem}")
