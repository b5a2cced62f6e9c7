"""Benchmark: one dry-run Slurm render (whole process) against the minimal Hydra app floor.

    python bench/render_speed.py [--runs 15]

Runs the two commands alternately (A/B in one run, since the machine is noisy) and prints the
median wall time of each and their ratio. Target: render <= 1.05x the floor. Both run with
bytecode caching on (as an installed package has it), whatever PYTHONDONTWRITEBYTECODE says here.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RECIPE = "recipes=training/llama/hf_llama3_8b_seq8k_gpu_p5x16_pretrain"
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
OVERRIDES = [RECIPE, "cluster=slurm", "instance_type=p5.48xlarge"]


def timed(argv: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the child): CPU time is steadier on a busy machine."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, cwd=REPO, env=ENV)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        render = [
            sys.executable,
            "main.py",
            *OVERRIDES,
            f"base_results_dir={tmp}/r",
            "dry_run=true",
        ]
        floor = [
            sys.executable,
            "bench/minimal_hydra_app.py",
            *OVERRIDES,
            f"base_results_dir={tmp}/f",
        ]
        timed(render), timed(floor)  # warm the page cache and .pyc files
        renders, floors = [], []
        for _ in range(args.runs):
            renders.append(timed(render))
            floors.append(timed(floor))
    for i, kind in enumerate(("wall", "CPU")):
        r = statistics.median(t[i] for t in renders)
        f = statistics.median(t[i] for t in floors)
        print(
            f"{kind:>4}: floor (minimal hydra app) {f * 1000:.0f} ms, dry-run slurm render "
            f"{r * 1000:.0f} ms, ratio {r / f:.2f}x (target <= 1.05x; medians of {args.runs})"
        )


if __name__ == "__main__":
    main()
