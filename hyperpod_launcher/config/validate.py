"""Check a plain (resolved) config section against a schema dataclass."""

from __future__ import annotations

import dataclasses
import types
import typing
from functools import cache
from typing import Any, Literal, Union

from hyperpod_launcher.errors import UserError, did_you_mean


@cache
def _hints(schema: type) -> dict[str, Any]:
    return typing.get_type_hints(schema)


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is list:
        return "a list"
    if origin is dict:
        return "a mapping"
    if tp is type(None):
        return "null"
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    return getattr(tp, "__name__", str(tp))


def _matches(value: Any, tp: Any) -> bool:
    if tp is Any:
        return True
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        return any(_matches(value, a) for a in typing.get_args(tp))
    if origin is Literal:
        return value in typing.get_args(tp)
    if tp is type(None):
        return value is None
    if dataclasses.is_dataclass(tp):
        return isinstance(value, dict)
    if origin is list:
        (item,) = typing.get_args(tp)
        return isinstance(value, list) and all(_matches(v, item) for v in value)
    if origin is dict:
        _, item = typing.get_args(tp)
        return isinstance(value, dict) and all(_matches(v, item) for v in value.values())
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, tp)


def _dataclass_in(tp: Any) -> type | None:
    if dataclasses.is_dataclass(tp):
        return tp
    for arg in typing.get_args(tp):
        if dataclasses.is_dataclass(arg):
            return arg
    return None


def check_section(data: Any, schema: type, path: str, moved: dict[str, str] | None = None) -> None:
    """Raise UserError on the first unknown key or wrongly typed value under `path`."""
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping, got {data!r}")
    hints = _hints(schema)
    for key, value in data.items():
        full = f"{path}.{key}" if path else str(key)
        if key not in hints:
            if moved and key in moved:
                raise UserError(f"unknown key '{full}': set {moved[key]} instead")
            valid = ", ".join(sorted(hints))
            raise UserError(
                f"unknown key '{full}'{did_you_mean(str(key), hints)}; valid keys: {valid}"
            )
        tp = hints[key]
        if not _matches(value, tp):
            raise UserError(f"{full}: expected {_type_name(tp)}, got {value!r}")
        nested = _dataclass_in(tp)
        if nested is not None and isinstance(value, dict):
            check_section(value, nested, full)
