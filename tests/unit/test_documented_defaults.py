"""Each cluster option's default is stated once, in its backend's options class: the shipped
cluster files and the key tables of docs/backends/ are checked against it (a value, a
`(default)` in a table, or a `A | B` list of choices in a comment that disagrees with the class
fails here)."""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from typing import Any, Literal, Union, get_args, get_origin

import pytest
import yaml

from hyperpod_launcher import backends
from tests.conftest import REPO

CLUSTER_DIR = REPO / "recipes_collection" / "cluster"
KEY_LINE = re.compile(r"^(?P<indent> *)(?P<key>\w+):(?P<rest>.*)$")
CHOICES = re.compile(r"\b[\w.-]+(?:\s*\|\s*[\w.-]+)+")


def _hints(schema: type) -> dict[str, Any]:
    return typing.get_type_hints(schema)


def _section(tp: Any) -> type | None:
    if dataclasses.is_dataclass(tp):
        return tp
    return next((a for a in get_args(tp) if dataclasses.is_dataclass(a)), None)


def _literal_choices(tp: Any) -> set[str]:
    if get_origin(tp) is Literal:
        return {str(a) for a in get_args(tp)}
    if get_origin(tp) in (Union, types.UnionType):
        return set().union(*(_literal_choices(a) for a in get_args(tp)))
    return set()


def _field(schema: type, dotted: str) -> tuple[type, str]:
    """(the dataclass holding the last part of `dotted`, that part); KeyError if unknown."""
    *parents, leaf = dotted.split(".")
    for part in parents:
        nested = _section(_hints(schema)[part])
        if nested is None:
            raise KeyError(dotted)
        schema = nested
    if leaf not in _hints(schema):
        raise KeyError(dotted)
    return schema, leaf


def _default(schema: type, leaf: str) -> Any:
    value = getattr(schema(), leaf)
    return dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value


def _yaml_keys(text: str) -> list[tuple[str, str]]:
    """(dotted key, its comment with continuation lines) for each key line of a cluster file."""
    keys: list[tuple[str, str]] = []
    stack: list[tuple[int, str]] = []
    for line in text.splitlines():
        match = KEY_LINE.match(line)
        if match:
            indent = len(match["indent"])
            stack = [(i, k) for i, k in stack if i < indent]
            stack.append((indent, match["key"]))
            comment = match["rest"].partition(" #")[2]
            keys.append((".".join(k for _, k in stack), comment))
        elif line.lstrip().startswith("#") and keys and line.startswith(" "):
            dotted, comment = keys[-1]
            keys[-1] = (dotted, comment + " " + line.lstrip()[1:])
    return keys


@pytest.mark.parametrize("name", backends.names())
def test_the_cluster_file_states_every_key_at_its_schema_default(name: str) -> None:
    schema = backends.options_schema(name)
    data = yaml.safe_load((CLUSTER_DIR / f"{name}.yaml").read_text()) or {}
    defaults = dataclasses.asdict(schema())
    assert data == defaults


@pytest.mark.parametrize("name", backends.names())
def test_choices_in_the_cluster_file_comments_are_the_schema_choices(name: str) -> None:
    schema = backends.options_schema(name)
    for dotted, comment in _yaml_keys((CLUSTER_DIR / f"{name}.yaml").read_text()):
        holder, leaf = _field(schema, dotted)
        allowed = _literal_choices(_hints(holder)[leaf])
        if not allowed:
            continue
        for listed in CHOICES.findall(comment):
            named = {c.strip() for c in listed.split("|")}
            assert named <= allowed, f"{name}.yaml {dotted}: {sorted(named - allowed)}"


def _documented_tables() -> list[tuple[str, str, str]]:
    """(backend, key prefix, first cell) of each row of the key tables of the backends' pages,
    docs/backends/<name>.md."""
    rows: list[tuple[str, str, str]] = []
    for page in sorted((REPO / "docs" / "backends").glob("*.md")):
        prefix = ""
        for line in page.read_text().splitlines():
            if not line.startswith("| "):
                continue
            first = line.split("|")[1].strip()
            if first.startswith("key"):
                under = re.search(r"under `([\w.]+)`", first)
                prefix = under[1] + "." if under else ""
                continue
            if not first.startswith("---"):
                rows.append((page.stem, prefix, first))
    return rows


ROW_KEY = re.compile(r"`([A-Za-z_][\w.]*)`(?: \(([^)]*)\))?")


def test_the_docs_have_key_tables_for_the_cluster_files() -> None:
    assert {backend for backend, _, _ in _documented_tables()} >= {"slurm", "k8s", "sm_jobs"}


def test_keys_and_defaults_in_the_documented_tables_are_the_schemas() -> None:
    problems = []
    for backend, prefix, cell in _documented_tables():
        schema = backends.options_schema(backend)
        for key, stated in ROW_KEY.findall(cell):
            try:
                holder, leaf = _field(schema, prefix + key)
            except KeyError:
                problems.append(f"{backend}: `{prefix}{key}` is not a key of cluster/{backend}")
                continue
            if not stated or "," in stated:  # no default given, or a list of sub-keys
                continue
            default = _default(holder, leaf)
            text = stated.strip("`")
            if text.startswith("null"):
                ok = default is None
            else:
                ok = yaml.safe_load(text) == default or text == default
            if not ok:
                problems.append(f"{backend}: `{prefix}{key}` ({stated}); the schema: {default!r}")
    assert not problems
