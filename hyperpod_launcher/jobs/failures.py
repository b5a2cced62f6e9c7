"""The real cause of a failed torchrun job, read from its log.

When one rank fails, torchrun's agent on that node prints a `ChildFailedError` summary naming
the first failed rank (its host, exit code and error file), and srun then stops the other
nodes, whose exit code (143, SIGTERM) is what the scheduler reports. The summary and the
failed rank's own output (each line prefixed `[rank<N>]:`) tell what actually happened.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

TAIL_BYTES = 256 * 1024  # the summary and the last error are at the end of a log
_ROOT_CAUSE = re.compile(
    r"Root Cause \(first observed failure\):\s*\[\d+\]:\s*"
    r"time\s*:\s*(?P<time>\S+)\s*host\s*:\s*(?P<host>\S+)\s*"
    r"rank\s*:\s*(?P<rank>\d+)[^\n]*\s*exitcode\s*:\s*(?P<exit>-?\d+)[^\n]*\s*"
    r"error_file\s*:\s*(?P<error_file>\S+)"
)
_ERRORISH = re.compile(r"error|exception|fatal|failed|abort|killed", re.IGNORECASE)


@dataclass(frozen=True)
class Failure:
    rank: int
    host: str
    exit_code: int
    error: str = ""  # the last error line of that rank, when there is one

    def describe(self) -> str:
        how = (
            f"was killed by signal {-self.exit_code}"
            if self.exit_code < 0
            else f"exited with code {self.exit_code}"
        )
        text = f"rank {self.rank} on {self.host} {how}"
        return f"{text}: {self.error}" if self.error else text

    def short(self) -> str:
        code = f"signal {-self.exit_code}" if self.exit_code < 0 else f"exit {self.exit_code}"
        return f"rank {self.rank} on {self.host}: {code}"


def _tail(path: Path) -> str:
    try:
        with path.open("rb") as handle:
            handle.seek(0, 2)
            handle.seek(max(0, handle.tell() - TAIL_BYTES))
            return handle.read().decode(errors="replace")
    except OSError:
        return ""


def _error_file_message(path: str) -> str:
    """torchrun's per-rank error file (written by `@record`): its message's last line."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return ""
    message = data.get("message")
    if isinstance(message, dict):
        message = message.get("message", "")
    lines = [line.strip() for line in str(message or "").splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _last_error_line(text: str, rank: int) -> str:
    prefix = f"[rank{rank}]:"
    lines = [line[len(prefix) :].strip() for line in text.splitlines() if line.startswith(prefix)]
    lines = [line for line in lines if line]
    errors = [line for line in lines if _ERRORISH.search(line)]
    return (errors or lines or [""])[-1]


def first_failure(logs: Iterable[Path]) -> Failure | None:
    """The first failed rank named in these logs' torchrun summaries (the earliest one; a
    rank that exited on its own before one that was signalled), or None."""
    texts = [_tail(path) for path in sorted(logs)]
    found = []
    for text in texts:
        for match in _ROOT_CAUSE.finditer(text):
            exit_code = int(match["exit"])
            found.append((match["time"], exit_code < 0, match, text))
    if not found:
        return None
    _, _, match, text = min(found, key=lambda item: (item[0], item[1]))
    rank = int(match["rank"])
    error = ""
    if match["error_file"] not in ("<N/A>", ""):
        error = _error_file_message(match["error_file"])
    if not error:
        error = _last_error_line("\n".join(texts), rank)
    return Failure(rank, match["host"], int(match["exit"]), error)
