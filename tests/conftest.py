"""Shared test helpers: real components are required under CI=true, optional elsewhere."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

# The index of the person running the tests, as the launcher would find it without the
# isolation below (read before any test changes the environment).
USER_INDEX = (
    Path(os.environ["HPL_STATE_DIR"])
    if os.environ.get("HPL_STATE_DIR")
    else Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    / "hyperpod-launcher"
) / "jobs.db"


def _user_rows(query: str, *params: object) -> list[tuple[object, ...]]:
    """Rows of the user's index, opened read-only (nothing when there is none)."""
    if not USER_INDEX.exists():
        return []
    with closing(sqlite3.connect(f"file:{USER_INDEX}?mode=ro", uri=True)) as db:
        try:
            return db.execute(query, params).fetchall()
        except sqlite3.OperationalError:  # no table yet
            return []


def user_index_mark() -> int:
    """Where the user's index is now (its newest row)."""
    rows = _user_rows("SELECT max(seq) FROM launches")
    return int(rows[0][0] or 0) if rows else 0


def added_to_user_index(since: int, mentioning: str) -> list[str]:
    """Rows added to the user's index after mark `since` that mention `mentioning` (other
    programs of the user may add their own launches meanwhile)."""
    rows = _user_rows("SELECT record FROM launches WHERE seq > ?", since)
    return [str(row[0]) for row in rows if mentioning in str(row[0])]


_USER_INDEX_MARK_AT_START = user_index_mark()


STATE_VARIABLES = (
    ("HPL_STATE_DIR", "state"),
    ("XDG_STATE_HOME", "xdg-state"),
    ("XDG_CACHE_HOME", "cache"),
)


def _isolate(root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for var, sub in STATE_VARIABLES:
        monkeypatch.setenv(var, str(root / sub))
    return root


@pytest.fixture(scope="session", autouse=True)
def isolated_session_state(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Module- and session-scoped fixtures (shared Slurm jobs, say) launch before any
    per-test fixture runs: they get the session's own folders."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        yield _isolate(tmp_path_factory.mktemp("session-user"), monkeypatch)


@pytest.fixture(autouse=True)
def isolated_state(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Every test (and every process it starts, which inherits os.environ) records its launches
    and caches in its own folders, never in the user's."""
    return _isolate(tmp_path_factory.mktemp("user"), monkeypatch)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    ours = str(session.config._tmp_path_factory.getbasetemp())  # type: ignore[attr-defined]
    if added_to_user_index(_USER_INDEX_MARK_AT_START, ours):
        print(
            f"\nerror: tests added launches to the user's job index {USER_INDEX}", file=sys.stderr
        )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


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
