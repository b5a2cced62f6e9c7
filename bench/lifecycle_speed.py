"""Benchmark: whole-process time of `hyperpod-launch jobs` and `status` (local records).

    python bench/lifecycle_speed.py [--runs 15] [--jobs 200]

Builds a throwaway index of finished local launches, then times the two commands next to a
bare `python -c pass` (the interpreter's own start-up), reporting medians.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def seed(root: Path, count: int) -> None:
    index = root / "state" / "jobs.jsonl"
    index.parent.mkdir(parents=True)
    with index.open("w") as out:
        for i in range(count):
            job_dir = root / "results" / f"job-{i}"
            job_dir.mkdir(parents=True)
            record = {
                "launch_id": f"L{i}",
                "name": f"job-{i}",
                "backend": "local",
                "job_id": str(10_000_000 + i),
                "job_dir": str(job_dir),
                "submitted_at": "2026-11-23T00:00:00+00:00",
                "details": {"log": ""},
            }
            (job_dir / "job.json").write_text(json.dumps(record))
            (job_dir / f"local-L{i}.exit").write_text("0\n")
            out.write(json.dumps(record) + "\n")


def median_ms(argv: list[str], env: dict[str, str], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, env=env, cwd=REPO, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--jobs", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        seed(Path(tmp), args.jobs)
        env = {**os.environ, "HPL_STATE_DIR": str(Path(tmp) / "state")}
        cli = [sys.executable, "-m", "hyperpod_launcher"]
        bare = median_ms([sys.executable, "-c", "pass"], env, args.runs)
        jobs = median_ms([*cli, "jobs", "--all"], env, args.runs)
        status = median_ms([*cli, "status", "job-7"], env, args.runs)
    print(f"python -c pass:          {bare:6.0f} ms (interpreter start-up)")
    print(f"jobs --all ({args.jobs} jobs): {jobs:6.0f} ms")
    print(f"status <name>:           {status:6.0f} ms   (medians of {args.runs})")


if __name__ == "__main__":
    main()
