"""Check a plain (resolved) config section against a schema dataclass."""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Collection
from functools import cache
from typing import Annotated, Any, Literal, TypeVar, Union, cast

from hyperpod_launcher.config.rules import Range, Section
from hyperpod_launcher.util.errors import UserError, did_you_mean

T = TypeVar("T")


@cache
def _hints(schema: type) -> dict[str, Any]:
    return typing.get_type_hints(schema, include_extras=True)


def _rules(tp: Any) -> tuple[Range, ...]:
    return tuple(m for m in getattr(tp, "__metadata__", ()) if isinstance(m, Range))


def type_name(tp: Any) -> str:
    """What a schema type allows, in words: `int >= 1`, `one of 'a', 'b'`."""
    origin = typing.get_origin(tp)
    if origin is Annotated:
        base = type_name(typing.get_args(tp)[0])
        return " ".join([base, *(r.text() for r in _rules(tp))])
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(type_name(a) for a in typing.get_args(tp))
    if origin is list:
        return "a list"
    if origin is dict:
        return "a mapping"
    if tp is type(None):
        return "null"
    if _is_section(tp):
        return "a mapping"
    return getattr(tp, "__name__", str(tp))


def _matches(value: Any, tp: Any) -> bool:
    if tp is Any:
        return True
    origin = typing.get_origin(tp)
    if origin is Annotated:
        base = typing.get_args(tp)[0]
        return _matches(value, base) and all(r.allows(value) for r in _rules(tp))
    if origin in (Union, types.UnionType):
        return any(_matches(value, a) for a in typing.get_args(tp))
    if origin is Literal:
        return value in typing.get_args(tp)
    if tp is type(None):
        return value is None
    if _is_section(tp):
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


def _is_section(tp: Any) -> bool:
    """A schema of a mapping: a dataclass (launcher keys) or a Section (stacks' recipes)."""
    return dataclasses.is_dataclass(tp) or (isinstance(tp, type) and issubclass(tp, Section))


def _section_in(tp: Any) -> type | None:
    if _is_section(tp):
        return tp
    for arg in typing.get_args(tp):
        if _is_section(arg):
            return arg
    return None


def _choice_hint(value: Any, tp: Any) -> str:
    """Did-you-mean among the string choices of a Literal (error path only)."""
    choices = [a for a in typing.get_args(tp) if isinstance(a, str)]
    for arg in typing.get_args(tp):
        if typing.get_origin(arg) is Literal:
            choices += [a for a in typing.get_args(arg) if isinstance(a, str)]
    return did_you_mean(value, choices) if isinstance(value, str) and choices else ""


def _shown(key: str, value: Any) -> str:
    """The value for an error message; a secret key's only by its type."""
    from hyperpod_launcher.util.masking import is_secret_key

    if is_secret_key(key):
        return f"a {type(value).__name__} (not shown)"
    if isinstance(value, dict):
        items = (f"{k!r}: {_shown(f'{key}.{k}', v)}" for k, v in value.items())
        return "{" + ", ".join(items) + "}"
    return repr(value)


def problem(value: Any, rule: Any) -> str | None:
    """What is wrong with `value` under a schema type such as `rules.Count` (what is allowed,
    what was given), or None when it holds: the text of check_section's errors."""
    if _matches(value, rule):
        return None
    return f"expected {type_name(rule)}, got {value!r}{_choice_hint(value, rule)}"


def check_value(value: Any, rule: Any, key: str) -> Any:
    """`value`, or the one line `key: expected int >= 1, got 0`: the rule a schema field
    states, for a value no schema section holds (a recipe value read by a path, a count)."""
    wrong = problem(value, rule)
    if wrong:
        raise UserError(f"{key}: {wrong}")
    return value


def _is_added(full: str, added: Collection[str]) -> bool:
    return any(full == a or full.startswith(a + ".") for a in added)


def check_section(
    data: Any,
    schema: type,
    path: str,
    moved: dict[str, str] | None = None,
    added: Collection[str] | None = None,
) -> None:
    """Raise UserError on the first unknown key or wrongly typed value under `path`.
    `added`, for sections that take extra keys (recipes), holds the dotted paths given with
    Hydra's `+`/`++`: keys at or under them may be unknown."""
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping, got {_shown(path, data)}")
    hints = _hints(schema)
    for key, value in data.items():
        full = f"{path}.{key}" if path else str(key)
        if key not in hints:
            if added is not None and _is_added(full, added):
                continue
            if moved and key in moved:
                raise UserError(f"unknown key '{full}': set {moved[key]} instead")
            hint = did_you_mean(str(key), hints)
            if added is not None and len(hints) > 12:  # a recipe section: keys can be added
                raise UserError(f"unknown key '{full}'{hint}; to add a new key use +{full}=...")
            valid = ", ".join(sorted(hints))
            raise UserError(f"unknown key '{full}'{hint}; valid keys: {valid}")
        tp = hints[key]
        if not _matches(value, tp):
            hint = _choice_hint(value, tp)
            raise UserError(f"{full}: expected {type_name(tp)}, got {_shown(full, value)}{hint}")
        nested = _section_in(tp)
        if nested is not None and isinstance(value, dict):
            check_section(value, nested, full, added=added)


def typed(data: Any, schema: type[T]) -> T:
    """A checked section (see check_section) as an instance of its schema dataclass: nested
    sections become their dataclasses, missing keys take the schema's defaults, so a reader
    names fields (a typo fails) and each default is written once, in the schema."""
    hints = _hints(cast(type, schema))  # a class is hashable; mypy can't see it in type[T]
    values: dict[str, Any] = {}
    for key, value in (data or {}).items():
        nested = _section_in(hints[key])
        if nested is not None and dataclasses.is_dataclass(nested) and isinstance(value, dict):
            value = typed(value, nested)
        values[key] = value
    return schema(**values)


def key_rules(data: dict[str, Any], schema: type, path: str) -> list[tuple[str, Any, str]]:
    """(dotted key, value, what the schema allows) for each leaf of `data`, in its order; the
    text is the one check_section's errors use. A key the schema lacks was added with `+`."""
    hints = _hints(schema)
    rows: list[tuple[str, Any, str]] = []
    for key, value in data.items():
        full = f"{path}.{key}"
        tp = hints.get(key)
        nested = _section_in(tp) if tp is not None else None
        if tp is None:
            rows.append((full, value, "added with +, no rule"))
        elif nested is not None and isinstance(value, dict) and value:
            rows.extend(key_rules(value, nested, full))
        else:
            rows.append((full, value, type_name(tp)))
    return rows
