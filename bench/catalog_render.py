"""Benchmark: the catalog-wide dry run (every recipe x every registered backend, one process).

    python bench/catalog_render.py [--runs 5]

Each run is a fresh process that imports the launcher, composes every recipe once (Hydra's
compose API, in batches) and builds + renders each backend's artifacts from that composition,
writing nothing; shellcheck and helm are not included. Prints median wall and CPU seconds of
the whole process and of its two phases. Target: <= 3 s on a 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHILD = """
import json, time
start = time.perf_counter()
from hyperpod_launcher.catalog import dry_run as catalog_dry_run
timings = {}
outcomes = catalog_dry_run.run(timings=timings)
timings["total_in_process"] = time.perf_counter() - start
timings["recipes"] = len({o.recipe for o in outcomes})
timings["backends"] = sorted({o.backend for o in outcomes})
timings["rendered"] = sum(o.request is not None for o in outcomes)
timings["refused"] = sum(o.refused is not None for o in outcomes)
print(json.dumps(timings))
"""


def once() -> tuple[float, float, dict]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", CHILD], cwd=REPO, capture_output=True, text=True, check=True
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    once()  # warm the page cache, .pyc files and the Jinja bytecode cache
    runs = [once() for _ in range(args.runs)]
    info = runs[-1][2]

    def med(values: list[float]) -> str:
        return f"{statistics.median(values):.2f} s"

    print(
        f"catalog dry run: {info['recipes']} recipes x {len(info['backends'])} backends "
        f"({', '.join(info['backends'])}) = {info['rendered']} renders, "
        f"{info['refused']} refused by design (cluster=local with more than one node)"
    )
    print(f"  whole process: wall {med([r[0] for r in runs])}, CPU {med([r[1] for r in runs])}")
    print(f"  compose every recipe once: {med([r[2]['compose'] for r in runs])}")
    print(f"  build + render all backends: {med([r[2]['build_render'] for r in runs])}")
    print(f"  (medians of {args.runs} runs; target <= 3 s)")


if __name__ == "__main__":
    main()
