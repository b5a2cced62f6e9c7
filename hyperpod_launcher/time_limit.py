"""`run.time_limit`: one parser, the same accepted forms on every backend.

The forms are sbatch's `--time` forms: `minutes`, `minutes:seconds`, `hours:minutes:seconds`,
`days-` (whole days), `days-hours`, `days-hours:minutes`, `days-hours:minutes:seconds`, and
`UNLIMITED` or `INFINITE` (any case). `0` means no limit, as it does for sbatch. Slurm passes
the text on; the other backends convert it with `time_limit_seconds` (activeDeadlineSeconds,
max_run).
"""

from __future__ import annotations

import re
from typing import Any

from hyperpod_launcher.errors import UserError

UNLIMITED = ("UNLIMITED", "INFINITE")
_FORM = re.compile(r"^(?:(?P<days>\d+)-)?(?P<a>\d+)(?::(?P<b>\d+))?(?::(?P<c>\d+))?$|^(?P<d>\d+)-$")
ALLOWED = "minutes, M:S, H:M:S, D-H, D-H:M, D-H:M:S or UNLIMITED, e.g. 90, 04:00:00, 2-00:00:00"


def normalize(value: Any, key: str) -> str | None:
    """The checked time limit as sbatch text (None: not set); UserError on any other form."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise UserError(f"{key}={value!r}: expected a time limit ({ALLOWED})")
    text = str(value).strip()
    if text.upper() in UNLIMITED:
        return "UNLIMITED"
    if not _FORM.match(text):
        raise UserError(f"{key}={value!r}: expected a time limit ({ALLOWED})")
    return text


def time_limit_seconds(value: Any, key: str = "run.time_limit") -> int | None:
    """The time limit in seconds; None when there is none (unset, 0 or UNLIMITED)."""
    text = normalize(value, key)
    if text is None or text == "UNLIMITED":
        return None
    match = _FORM.match(text)
    assert match is not None  # normalize accepted it
    parts = [int(p) for p in match.group("a", "b", "c") if p is not None]
    days = match.group("days") or match.group("d")
    if days is not None:  # days-[hours[:minutes[:seconds]]]
        hours, minutes, seconds = [*parts, 0, 0, 0][:3]
        total = int(days) * 86400 + hours * 3600 + minutes * 60 + seconds
    elif len(parts) == 1:  # minutes
        total = parts[0] * 60
    elif len(parts) == 2:  # minutes:seconds
        total = parts[0] * 60 + parts[1]
    else:  # hours:minutes:seconds
        total = parts[0] * 3600 + parts[1] * 60 + parts[2]
    return total or None
