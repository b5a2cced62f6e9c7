"""JSON Schema (draft 2020-12) of config.yaml, each cluster file and each stack's recipes.

Generated from the same schema classes the launch validates with, so an editor's YAML language
server (`# yaml-language-server: $schema=<file>`) and CI check what the launcher checks. A
config file may hold Hydra's `defaults` list and `${...}` interpolations or `???` anywhere a
value goes; those are allowed as strings.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Annotated, Any, Literal, Union

from hyperpod_launcher.config.rules import Range, Section

DRAFT = "https://json-schema.org/draft/2020-12/schema"
HYDRA_VALUE = {"type": "string", "pattern": r"^(\?\?\?|.*\$\{.*\}.*)$"}


def _is_section(tp: Any) -> bool:
    return dataclasses.is_dataclass(tp) or (isinstance(tp, type) and issubclass(tp, Section))


def _range(base: dict[str, Any], rule: Range) -> dict[str, Any]:
    bounded = dict(base)
    if rule.ge is not None:
        bounded["minimum"] = rule.ge
    if rule.gt is not None:
        bounded["exclusiveMinimum"] = rule.gt
    if rule.le is not None:
        bounded["maximum"] = rule.le
    return {"anyOf": [bounded, {"enum": list(rule.also)}]} if rule.also else bounded


def _value(tp: Any) -> dict[str, Any]:
    if tp is Any:
        return {}
    origin = typing.get_origin(tp)
    if origin is Annotated:
        schema = _value(typing.get_args(tp)[0])
        for rule in tp.__metadata__:
            if isinstance(rule, Range):
                schema = _range(schema, rule)
        return schema
    if origin in (Union, types.UnionType):
        return {"anyOf": [_value(a) for a in typing.get_args(tp)]}
    if origin is Literal:
        return {"enum": list(typing.get_args(tp))}
    if origin is list:
        return {"type": "array", "items": _typed(typing.get_args(tp)[0])}
    if origin is dict:
        return {"type": "object", "additionalProperties": _typed(typing.get_args(tp)[1])}
    if _is_section(tp):
        return section(tp)
    simple = {str: "string", int: "integer", float: "number", bool: "boolean", type(None): "null"}
    return {"type": simple[tp]}


def _typed(tp: Any) -> dict[str, Any]:
    """A value's schema, or an interpolation / `???` standing in for it."""
    value = _value(tp)
    return value if not value or _is_section(tp) else {"anyOf": [value, HYDRA_VALUE]}


def section(schema: type, top: bool = False) -> dict[str, Any]:
    hints = typing.get_type_hints(schema, include_extras=True)
    defaults = {}
    if dataclasses.is_dataclass(schema):
        for f in dataclasses.fields(schema):
            if f.default is not dataclasses.MISSING and not _is_section(hints[f.name]):
                defaults[f.name] = f.default
    properties = {}
    for key, tp in hints.items():
        prop = _typed(tp)
        if key in defaults:
            prop = {**prop, "default": defaults[key]}
        properties[key] = prop
    if top:  # Hydra's own keys: the defaults list, and hydra settings in config.yaml
        properties["defaults"] = {"type": "array"}
        properties["hydra"] = {"type": "object"}
    return {"type": "object", "properties": properties, "additionalProperties": False}
