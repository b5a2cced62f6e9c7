"""Type-checking rules of the package (mypy settings in pyproject.toml)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

from tests.conftest import REPO, require


def test_no_override_is_suppressed():
    # A backend's methods take its own request type through Backend[RequestT]; no other
    # subclass hides a mismatched override either.
    offenders = [
        f"{path.relative_to(REPO)}:{number}"
        for path in sorted((REPO / "hyperpod_launcher").rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if "type: ignore[override]" in line
    ]
    assert offenders == []


def test_mypy_is_clean():
    require(importlib.util.find_spec("mypy") is not None, "mypy")
    proc = subprocess.run(
        [sys.executable, "-m", "mypy"], capture_output=True, text=True, cwd=REPO, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
