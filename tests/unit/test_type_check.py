"""Type-checking rules of the package (mypy settings in pyproject.toml)."""

from __future__ import annotations

from tests.conftest import REPO


def test_no_override_is_suppressed():
    # A backend's methods take its own request type through Backend[RequestT].
    offenders = [
        f"{path.relative_to(REPO)}:{number}"
        for path in sorted((REPO / "hyperpod_launcher" / "backends").rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if "type: ignore[override]" in line
    ]
    assert offenders == []
