"""Read `a.b.c` paths out of plain nested mappings (resolved configs)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def get(data: Mapping[str, Any] | None, dotted: str, default: Any = None) -> Any:
    """The value at `dotted`, or `default` where any part of the path is missing."""
    node: Any = data
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return default
        node = node[part]
    return node
