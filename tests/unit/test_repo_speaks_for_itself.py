"""Every file in the repository states its facts itself: none points at documents, trackers or
machines outside it (issue numbers, design-document sections, one machine's paths)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from tests.conftest import REPO, require

OUTSIDE_REFERENCES = re.compile(
    r"\bissue\s*#?\d+"  # a tracker's issue number
    r"|\bthe issue'?s?\b"
    r"|\bDESIGN(\.md|\s*§)"
    r"|§"
    r"|(?<![\w.~-])/work/"
    r"|\bthe brief\b"
    r"|\breply with:",
    re.IGNORECASE,
)


def _tracked_files() -> list[Path]:
    require(shutil.which("git") is not None and (REPO / ".git").exists(), "a git checkout")
    listing = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True
    ).stdout.decode()
    return [REPO / name for name in listing.split("\0") if name]


def test_no_file_refers_to_documents_outside_the_repository() -> None:
    found = []
    for path in _tracked_files():
        if path == Path(__file__) or not path.is_file():
            continue
        try:
            text = path.read_text()
        except UnicodeDecodeError:  # a binary file
            continue
        for number, line in enumerate(text.splitlines(), 1):
            match = OUTSIDE_REFERENCES.search(line)
            if match:
                found.append(f"{path.relative_to(REPO)}:{number}: {match.group(0)!r}")
    assert found == []
