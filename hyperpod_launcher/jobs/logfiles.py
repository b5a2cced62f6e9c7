"""Print and follow log files: the shared part of every backend's `logs` command."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path


class Note(str):
    """A line `logs` yields about the job rather than from it (no pods yet, a pod without a
    log): the CLI shows it on stderr, apart from the job's own output."""


def rank_filter(rank: int | None) -> Callable[[str], bool]:
    """torchrun prefixes each line with `[rank<N>]:` (TORCHELASTIC_LOG_LINE_PREFIX_TEMPLATE)."""
    if rank is None:
        return lambda line: True
    prefix = f"[rank{rank}]:"
    return lambda line: line.startswith(prefix)


def lines(
    paths: Callable[[], Iterable[Path]],
    finished: Callable[[], bool],
    *,
    follow: bool,
    rank: int | None = None,
    poll: float = 0.5,
) -> Iterator[str]:
    """The files' lines; with `follow`, keep yielding new lines until `finished()`."""
    keep = rank_filter(rank)
    offsets: dict[Path, int] = {}
    partial: dict[Path, str] = {}

    def drain() -> Iterator[str]:
        for path in sorted(paths()):
            try:
                with path.open("r", errors="replace") as handle:
                    handle.seek(offsets.get(path, 0))
                    chunk = handle.read()
                    offsets[path] = handle.tell()
            except FileNotFoundError:
                continue
            found = (partial.pop(path, "") + chunk).split("\n")
            partial[path] = found.pop()
            yield from filter(keep, found)

    yield from drain()
    while follow and not finished():
        time.sleep(poll)
        yield from drain()
    yield from drain()
    for rest in partial.values():
        if rest and keep(rest):
            yield rest
