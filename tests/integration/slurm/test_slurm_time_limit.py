"""The time-limit forms the launcher accepts are the ones the real sbatch accepts.

sbatch also takes undocumented spellings such as `-1` and `-2`; the launcher rejects those,
since the other backends could not read them the same way.
"""

from __future__ import annotations

import subprocess

import pytest

from hyperpod_launcher.config.time_limit import normalize
from hyperpod_launcher.util.errors import UserError

FORMS = (
    "90",
    "1:30",
    "04:00:00",
    "2-00",
    "1-12:30",
    "1-12:30:15",
    "UNLIMITED",
    "infinite",
    "0",
    "forever",
    "1:2:3:4",
    "1h",
    "2-",
)


def _sbatch_accepts(text: str) -> bool:
    proc = subprocess.run(
        ["sbatch", "--test-only", f"--time={text}", "--wrap=true"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0 or "Invalid --time" in proc.stderr, proc.stderr
    return proc.returncode == 0


def _launcher_accepts(text: str) -> bool:
    try:
        normalize(text, "run.time_limit")
    except UserError:
        return False
    return True


@pytest.mark.parametrize("text", FORMS)
def test_launcher_and_sbatch_agree(slurm_cluster: None, text: str) -> None:
    assert _launcher_accepts(text) == _sbatch_accepts(text)
    if _launcher_accepts(text):
        assert _sbatch_accepts(normalize(text, "run.time_limit") or "")
