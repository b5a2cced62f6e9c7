"""How many GPUs this machine gives a `cluster=local` job.

torch's own count when torch imports here (it honours CUDA_VISIBLE_DEVICES, and it is the torch
the job runs), else `nvidia-smi -L` filtered by CUDA_VISIBLE_DEVICES. A machine with neither
an NVIDIA device node nor nvidia-smi has none, and then torch is not imported at all.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess


def _visible(count: int) -> int:
    """The devices of `count` that CUDA_VISIBLE_DEVICES leaves visible."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return count
    seen = 0
    for item in visible.split(","):
        item = item.strip()
        if not item or (item.isdigit() and int(item) >= count) or item.startswith("-"):
            break  # CUDA stops at the first invalid entry
        seen += 1
    return min(seen, count)


def _nvidia_smi(tool: str) -> int:
    try:
        out = subprocess.run([tool, "-L"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return 0
    if out.returncode != 0:
        return 0
    return _visible(sum(1 for line in out.stdout.splitlines() if line.startswith("GPU ")))


def count() -> int:
    tool = shutil.which("nvidia-smi")
    if tool is None and not glob.glob("/dev/nvidia[0-9]*"):
        return 0
    try:
        import torch
    except ImportError:
        return _nvidia_smi(tool) if tool else 0
    return int(torch.cuda.device_count())
