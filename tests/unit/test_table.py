"""Terminal tables (`jobs`, `recipes list`): columns line up and never run together."""

from __future__ import annotations

import re

from hyperpod_launcher.cli.table import format_table


def test_columns_are_aligned_and_at_least_two_spaces_apart() -> None:
    rows = [
        ("NAME", "STATE", "SUBMITTED", "JOB FOLDER"),
        ("a-very-long-run-name", "failed (FAILED) rank 1 on node2: exit 3", "2026-11-23", "/r/a"),
        ("x", "succeeded (COMPLETED)", "2026-11-23T00:00:00+00:00", "/r/x"),
    ]
    lines = format_table(rows).splitlines()
    for line, row in zip(lines, rows, strict=True):
        assert re.split(r" {2,}", line) == list(row), line
    starts = {line.index(row[2]) for line, row in zip(lines, rows, strict=True)}
    assert len(starts) == 1  # one column start per column


def test_the_last_column_is_not_padded_and_empty_rows_print_nothing() -> None:
    assert format_table([("A", "B"), ("long-cell", "")]) == "A          B\nlong-cell"
    assert format_table([]) == ""
