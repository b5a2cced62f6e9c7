"""The charts' values.schema.json, applied by the launcher: the one rulebook for values.yaml.

Helm validates values.yaml against the same file at install; the launcher applies it at render
so a bad value is one line before anything is written. It reads the subset of JSON Schema
(draft-07) the charts use, with no third-party import on the render path; a test checks it
agrees with the jsonschema library on the charts' own documents.
"""

from __future__ import annotations

import json
import pathlib
import re
from dataclasses import dataclass
from functools import cache
from typing import Any

# The job charts and their shared library chart, one folder each.
CHARTS_DIR = pathlib.Path(__file__).resolve().parent / "charts"

Path = tuple[str | int, ...]
KEYWORDS = frozenset(
    {
        "$schema", "$ref", "title", "description", "definitions", "type", "enum", "pattern",
        "minLength", "maxLength", "minimum", "maximum", "minItems", "maxProperties", "required",
        "properties", "additionalProperties", "propertyNames", "items", "anyOf", "allOf", "not",
    }
)  # fmt: skip


@dataclass(frozen=True)
class Violation:
    path: Path  # where in values.yaml
    value: Any
    rule: str  # what is allowed, in words


@cache
def schema(chart: str) -> dict[str, Any]:
    path = CHARTS_DIR / chart / "values.schema.json"
    return json.loads(path.read_text(encoding="utf-8"))


@cache
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _is_type(value: Any, name: str) -> bool:
    if name == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if name == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    kinds = {"null": type(None), "boolean": bool, "string": str, "array": list, "object": dict}
    return isinstance(value, kinds[name])


def _bounds(node: dict[str, Any]) -> str:
    low, high = node.get("minimum"), node.get("maximum")
    if low is not None and high is not None:
        return f"{low} to {high}"
    return f"{low} or more" if low is not None else f"at most {high}"


def check(value: Any, chart: str, definition: str | None = None) -> Violation | None:
    """The first rule `value` breaks: the whole values document, or one named definition."""
    root = schema(chart)
    node = root["definitions"][definition] if definition else root
    return _check(value, node, root, (), node.get("description"))


def _check(value: Any, node: dict[str, Any], root: dict, path: Path, about: str | None):
    about = node.get("description", about)
    if "$ref" in node:
        name = node["$ref"].removeprefix("#/definitions/")
        target = root["definitions"][name]
        found = _check(value, target, root, path, about)
        if found:
            return found
    for branch in node.get("allOf", ()):
        found = _check(value, branch, root, path, about)
        if found:
            return found
    if "anyOf" in node:
        branches = node["anyOf"]
        found = [_check(value, b, root, path, about) for b in branches]
        if all(found):
            # The branch that fails deepest says most; null is only ever the alternative.
            said = [v for b, v in zip(branches, found, strict=True) if b != {"type": "null"}]
            said = said or found
            return max(reversed(said), key=lambda v: len(v.path))
    if "not" in node and _check(value, node["not"], root, path, about) is None:
        required = node["not"].get("required")
        rule = f"not all of {', '.join(required)} together" if required else "a different value"
        return Violation(path, value, rule)
    return _check_keywords(value, node, root, path, about)


def _check_keywords(value: Any, node: dict[str, Any], root: dict, path: Path, about: str | None):
    kinds = node.get("type")
    if kinds is not None:
        names = [kinds] if isinstance(kinds, str) else kinds
        if not any(_is_type(value, n) for n in names):
            return Violation(path, value, about or f"expected {' or '.join(names)}")
    if "enum" in node and value not in node["enum"]:
        return Violation(path, value, "one of " + ", ".join(str(e) for e in node["enum"]))
    if isinstance(value, str):
        if "maxLength" in node and len(value) > node["maxLength"]:
            rule = f"at most {node['maxLength']} characters, this one has {len(value)}"
            return Violation(path, value, rule)
        if "minLength" in node and len(value) < node["minLength"]:
            return Violation(path, value, about or f"at least {node['minLength']} character(s)")
        if "pattern" in node and not _regex(node["pattern"]).search(value):
            return Violation(path, value, about or f"matching {node['pattern']}")
    if _is_type(value, "number"):
        low, high = node.get("minimum"), node.get("maximum")
        if (low is not None and value < low) or (high is not None and value > high):
            return Violation(path, value, _bounds(node))
    if isinstance(value, list):
        if "minItems" in node and len(value) < node["minItems"]:
            return Violation(path, value, f"at least {node['minItems']} item(s)")
        for index, item in enumerate(value):
            found = "items" in node and _check(item, node["items"], root, (*path, index), about)
            if found:
                return found
    if isinstance(value, dict):
        return _check_object(value, node, root, path, about)
    return None


def _check_object(value: dict, node: dict[str, Any], root: dict, path: Path, about: str | None):
    if "maxProperties" in node and len(value) > node["maxProperties"]:
        return Violation(path, value, f"at most {node['maxProperties']} key(s)")
    for key in node.get("required", ()):
        if key not in value:
            return Violation((*path, key), None, f"{key} is required")
    properties = node.get("properties", {})
    extra = node.get("additionalProperties", True)
    for key, item in value.items():
        if "propertyNames" in node:
            found = _check(key, node["propertyNames"], root, (*path, key), None)
            if found:
                return Violation(found.path, key, "a key " + found.rule)
        if key in properties:
            found = _check(item, properties[key], root, (*path, key), None)
        elif extra is False:
            return Violation((*path, key), item, "not a key of this section")
        elif isinstance(extra, dict):
            found = _check(item, extra, root, (*path, key), None)
        else:
            found = None
        if found:
            return found
    return None
