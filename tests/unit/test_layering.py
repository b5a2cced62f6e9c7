"""The stage packages import downward only: cli, catalog, launch, backends, prepare, telemetry,
jobs, spec, stacks, config, util (the contract and its few named exceptions are in
pyproject.toml's [tool.importlinter])."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_stages_import_downward_only() -> None:
    lint = (
        "from importlinter.cli import lint_imports; raise SystemExit(lint_imports(no_cache=True))"
    )
    proc = subprocess.run([sys.executable, "-c", lint], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "1 kept, 0 broken" in proc.stdout


def test_every_module_sits_in_a_stage_package() -> None:
    flat = sorted(
        p.name
        for p in (REPO / "hyperpod_launcher").glob("*.py")
        if p.name not in {"__init__.py", "__main__.py"}
    )
    assert flat == []
