"""The config's `watch` section as the environment variables the per-node watcher reads."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hyperpod_launcher.util.errors import UserError

_NUMBERS = {
    "hang_timeout": ("HPL_HANG_TIMEOUT", 0.0),  # (variable, smallest value allowed)
    "hang_floor": ("HPL_HANG_FLOOR", 1.0),
    "hang_factor": ("HPL_HANG_FACTOR", 1.0),
}


def watch_env(section: Mapping[str, Any] | None) -> dict[str, str]:
    """{variable: value} for the keys set; bad values raise UserError naming the key."""
    env: dict[str, str] = {}
    for key, (name, least) in _NUMBERS.items():
        value = (section or {}).get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or value < least:
            raise UserError(f"watch.{key}={value!r}: must be a number of at least {least:g}")
        env[name] = f"{value:g}"
    if (section or {}).get("require_efa"):
        env["HPL_REQUIRE_EFA"] = "1"
    return env
