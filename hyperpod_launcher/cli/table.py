"""Plain-text tables for the terminal: left-aligned columns, two spaces between them."""

from __future__ import annotations

from collections.abc import Sequence


def format_table(rows: Sequence[Sequence[str]]) -> str:
    """The rows as aligned lines; the last column is not padded (it may be long)."""
    if not rows:
        return ""
    *padded, _ = zip(*rows, strict=True)  # columns
    line = "  ".join([*(f"%-{max(map(len, column))}s" for column in padded), "%s"])
    return "\n".join([(line % tuple(row)).rstrip() for row in rows])
