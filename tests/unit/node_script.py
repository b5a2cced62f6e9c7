"""Run a rendered per-node script for real in bash, with recording stand-ins for the launchers.

`torchrun` and `neuron_parallel_compile` are replaced on PATH by scripts that append one JSON
line per call (argv, working directory and the environment variables asked for) and exit 0;
everything else in the per-node script (exports, limits, checkpoint selection) runs as written.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
from pathlib import Path

RECORDER = """#!/usr/bin/env python3
import json, os, resource, sys
with open(os.environ["HPL_TEST_RECORD"], "a") as out:
    out.write(json.dumps({
        "tool": os.path.basename(sys.argv[0]),
        "argv": sys.argv[1:],
        "cwd": os.getcwd(),
        "nofile": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
        "env": {k: os.environ.get(k) for k in os.environ["HPL_TEST_ENV"].split(",")},
    }) + "\\n")
if os.path.basename(sys.argv[0]) == "neuron_parallel_compile":
    os.execvp(sys.argv[1], sys.argv[1:])
"""


def run(
    script: str,
    tmp: Path,
    env_names: tuple[str, ...] = (),
    restart_count: int = 0,
    extra_env: dict[str, str] | None = None,
    nofile: tuple[int, int] | None = None,
) -> tuple[subprocess.CompletedProcess[str], list[dict[str, object]]]:
    """Run the per-node script text; return the process and the recorded launcher calls.
    `nofile`: the (soft, hard) open-files limit to start it with."""
    bin_dir = tmp / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    for tool in ("torchrun", "neuron_parallel_compile"):
        (bin_dir / tool).write_text(RECORDER)
        (bin_dir / tool).chmod(0o755)
    path = tmp / "train_script.sh"
    path.write_text(script)
    record = tmp / "calls.jsonl"
    record.unlink(missing_ok=True)
    env = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "HOME": str(tmp),
        "HPL_NNODES": "1",
        "HPL_RDZV_HOST": "127.0.0.1",
        "HPL_RDZV_PORT": "29400",
        "HPL_RDZV_ID": "hpl-test",
        "HPL_RESTART_COUNT": str(restart_count),
        "HPL_TEST_RECORD": str(record),
        "HPL_TEST_ENV": ",".join(env_names) or "HPL_NNODES",
        **(extra_env or {}),
    }

    def limits() -> None:
        if nofile is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, nofile)

    proc = subprocess.run(
        ["bash", str(path)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        preexec_fn=limits,
    )
    calls = (
        [json.loads(line) for line in record.read_text().splitlines()] if record.exists() else []
    )
    return proc, calls
