"""Print and follow log files: the shared part of every backend's `logs` command."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TextIO


def rank_filter(rank: int | None) -> Callable[[str], bool]:
    """torchrun prefixes each line with `[rank<N>]:` (TORCHELASTIC_LOG_LINE_PREFIX_TEMPLATE)."""
    if rank is None:
        return lambda line: True
    prefix = f"[rank{rank}]:"
    return lambda line: line.startswith(prefix)


def stream(
    paths: Callable[[], Iterable[Path]],
    finished: Callable[[], bool],
    *,
    follow: bool,
    rank: int | None = None,
    out: TextIO = sys.stdout,
    poll: float = 0.5,
) -> None:
    """Print the files' lines; with `follow`, keep printing new lines until `finished()`."""
    keep = rank_filter(rank)
    offsets: dict[Path, int] = {}
    partial: dict[Path, str] = {}

    def drain() -> None:
        for path in sorted(paths()):
            try:
                with path.open("r", errors="replace") as handle:
                    handle.seek(offsets.get(path, 0))
                    chunk = handle.read()
                    offsets[path] = handle.tell()
            except FileNotFoundError:
                continue
            lines = (partial.pop(path, "") + chunk).split("\n")
            partial[path] = lines.pop()
            for line in lines:
                if keep(line):
                    out.write(line + "\n")
        out.flush()

    drain()
    while follow and not finished():
        time.sleep(poll)
        drain()
    drain()
    for _path, rest in partial.items():
        if rest and keep(rest):
            out.write(rest + "\n")
    out.flush()
