"""The masking relay of a detached job: `python -m hyperpod_launcher.util.log_mask LOG` appends what
it reads on stdin to LOG with the launch's secret values replaced by ****.

A detached job outlives the launcher, so its output cannot pass through the launcher's own
masking: this small process sits between the job and its log until the job's output ends.
The values come in the environment (MASK_VALUES_ENV, a JSON list), never in argv.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import BinaryIO

MASK_VALUES_ENV = "HPL_MASK_VALUES"


def start(log: BinaryIO, values: list[str]) -> subprocess.Popen[bytes]:
    """The relay, writing to the open `log`; the job's output goes to its stdin."""
    package_root = str(Path(__file__).resolve().parents[2])
    path = os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PYTHONPATH": path, MASK_VALUES_ENV: json.dumps(values)}
    return subprocess.Popen(
        [sys.executable, "-m", "hyperpod_launcher.util.log_mask"],
        env=env,
        stdin=subprocess.PIPE,
        stdout=log,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # a Ctrl-C at the launcher's terminal leaves it running
    )


def main() -> None:
    from hyperpod_launcher.util.masking import mask

    values = json.loads(os.environ.pop(MASK_VALUES_ENV, "[]"))
    out = sys.stdout.buffer
    for raw in sys.stdin.buffer:
        out.write(mask(raw.decode(errors="replace"), values).encode())
        out.flush()


if __name__ == "__main__":
    main()
