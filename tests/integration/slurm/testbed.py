"""Helpers for tests that run against the real local Slurm testbed (scripts/slurm_testbed)."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]
UP_SCRIPT = REPO_ROOT / "scripts" / "slurm_testbed" / "up.sh"
ADAPTER_FIXTURE = REPO_ROOT / "tests" / "fixtures" / "adapter"

TERMINAL_STATES = frozenset(
    {
        "COMPLETED",
        "FAILED",
        "CANCELLED",
        "TIMEOUT",
        "NODE_FAIL",
        "OUT_OF_MEMORY",
        "BOOT_FAIL",
        "DEADLINE",
        "PREEMPTED",
    }
)

# Values may contain spaces (Command=, WorkDir=, Reason=...): split only before the next `Key=`.
# The format itself is ambiguous for a value holding " word=" (JobName="a b=c" splits at b=).
_FIELD_SPLIT = re.compile(r" (?=[A-Za-z][\w:/]*=)")


def ensure_up() -> None:
    """Start the testbed (idempotent); raise RuntimeError with the output tail on failure."""
    proc = subprocess.run(
        ["bash", str(UP_SCRIPT)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        tail = "\n".join(proc.stdout.splitlines()[-60:])
        raise RuntimeError(f"{UP_SCRIPT} failed with exit code {proc.returncode}:\n{tail}")


def parse_job_record(line: str) -> dict[str, str]:
    """Parse one line of `scontrol show job -o` into its Key=Value fields."""
    fields: dict[str, str] = {}
    for item in _FIELD_SPLIT.split(line.strip()):
        key, sep, value = item.partition("=")
        if sep:
            fields[key] = value
    return fields


def wait_for_job(job_id: str, timeout: float = 180) -> dict[str, str]:
    """Poll `scontrol show job -o JOB_ID` until the job is in a terminal state; return its fields.

    JobState may carry a suffix for a job being finished (e.g. "COMPLETING"); only the exact
    terminal names count. Raises TimeoutError with the last state seen.
    """
    deadline = time.monotonic() + timeout
    last = "<no answer from scontrol>"
    while True:
        proc = subprocess.run(
            ["scontrol", "show", "job", "-o", str(job_id)],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode == 0 and proc.stdout.strip():
            # A heterogeneous job or array prints one line per component; the first is the leader.
            fields = parse_job_record(proc.stdout.splitlines()[0])
            last = fields.get("JobState", "<no JobState>")
            if last in TERMINAL_STATES:
                return fields
        else:
            last = (proc.stderr or proc.stdout).strip() or last
        if time.monotonic() >= deadline:
            raise TimeoutError(f"job {job_id} not finished after {timeout:g}s; last state: {last}")
        time.sleep(0.2)


def _git(repo: Path, *args: str) -> str:
    out = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def adapter_repo(root: Path) -> tuple[Path, str]:
    """A local git repo standing in for the training adapter; returns (path, pinned commit).

    A later commit breaks the entry script, so the job succeeds only on the pinned commit."""
    repo = root / "adapter"
    shutil.copytree(ADAPTER_FIXTURE, repo)
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "adapter")
    pinned = _git(repo, "rev-parse", "HEAD")
    entry = repo / "examples" / "llama" / "llama_pretrain.py"
    entry.write_text("raise SystemExit('not the pinned commit')\n")
    _git(repo, "commit", "-q", "-am", "break it")
    return repo, pinned
