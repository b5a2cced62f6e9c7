"""Shared test helpers: real components are required under CI=true, optional elsewhere."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require(available: bool, what: str) -> None:
    """Fail in CI when a real component is missing; skip (with the reason) elsewhere."""
    if available:
        return
    message = f"{what} is not available (scripts/run-tests.sh installs it)"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def require_tool(name: str) -> str:
    path = shutil.which(name) or (
        str(REPO / ".tools" / "bin" / name) if (REPO / ".tools" / "bin" / name).exists() else None
    )
    require(path is not None, f"`{name}`")
    return str(path)


def run_launcher(
    *overrides: str, env: dict[str, str] | None = None, cwd: str | Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `python main.py <overrides>` as a user would; return the finished process."""
    return subprocess.run(
        [sys.executable, str(REPO / "main.py"), *overrides],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=cwd or REPO,
        check=False,
    )


def shellcheck(*paths: str | Path) -> None:
    tool = require_tool("shellcheck")
    proc = subprocess.run(
        [tool, "--severity=style", *map(str, paths)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run `hyperpod-launch <args>` (job commands) as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "hyperpod_launcher", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=REPO,
        check=False,
    )
