"""Benchmark: whole-process time of `hyperpod-launch jobs` and `status` (local records).

    python bench/lifecycle_speed.py [--runs 15] [--jobs 200] [--metrics-lines 500]
    python bench/lifecycle_speed.py --runs 5 --jobs 100000   # the large index case

Builds a throwaway index of finished local launches in the layout of an earlier version
(`jobs.jsonl`), lets the first command migrate it and the first `jobs --all` ask every
launch's state (each timed once), then times `jobs` (the newest 20), `jobs --all` (ended
launches remembered) and `status <name>` next to a bare `python -c pass` (the
interpreter's own start-up), reporting medians. Each job folder gets a metrics file of
`--metrics-lines` step lines (what the per-node watcher writes), which `status` and the
PROGRESS column of `jobs` read. Targets for 100,000 launches: `jobs` and `status <name>` at
most 0.2 s over interpreter start, `jobs --all` at most 1.5 s.
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


def metrics(lines: int) -> str:
    step = {
        "event": "step",
        "max_steps": 5000,
        "loss": 1.83,
        "lr": 2e-5,
        "tokens": 65536,
        "samples": 16,
        "steps": 10,
        "step_time_s": 1.2,
        "memory_gib": 61.2,
        "model": {"params": 7_000_000_000, "layers": 32, "hidden": 4096, "seq": 4096},
    }
    rows = [{"event": "attempt", "attempt": 0, "host": "node1", "time": 1.8e9}]
    rows += [{**step, "step": 10 * (i + 1), "time": 1.8e9 + 12 * i} for i in range(lines)]
    return "".join(json.dumps(row) + "\n" for row in rows)


def seed(root: Path, count: int, metrics_lines: int = 0) -> None:
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
            if metrics_lines:
                (job_dir / f"hpl-metrics-L{i}.jsonl").write_text(metrics(metrics_lines))
            out.write(json.dumps(record) + "\n")


def once_ms(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, cwd=REPO, check=True, stdout=subprocess.DEVNULL)
    return (time.perf_counter() - start) * 1000


def median_ms(argv: list[str], env: dict[str, str], runs: int) -> float:
    return statistics.median(once_ms(argv, env) for _ in range(runs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--metrics-lines", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        seed(Path(tmp), args.jobs, args.metrics_lines)
        env = {**os.environ, "HPL_STATE_DIR": str(Path(tmp) / "state")}
        cli = [sys.executable, "-m", "hyperpod_launcher"]
        first = once_ms([*cli, "jobs"], env)  # migrates an earlier version's index
        first_all = once_ms([*cli, "jobs", "--all"], env)  # asks for every launch's state
        bare = median_ms([sys.executable, "-c", "pass"], env, args.runs)
        jobs = median_ms([*cli, "jobs"], env, args.runs)
        every = median_ms([*cli, "jobs", "--all"], env, args.runs)
        status = median_ms([*cli, "status", f"job-{args.jobs // 2}"], env, args.runs)
    n = args.jobs
    print(f"python -c pass:           {bare:6.0f} ms (interpreter start-up)")
    print(f"first jobs ({n} jobs):   {first:6.0f} ms (once; migrates jobs.jsonl)")
    print(f"first jobs --all:         {first_all:6.0f} ms (once; asks every launch's state)")
    print(f"jobs ({n} jobs):         {jobs:6.0f} ms  ({jobs - bare:+.0f} ms over start-up)")
    print(f"jobs --all ({n} jobs):   {every:6.0f} ms")
    print(f"status <name>:            {status:6.0f} ms  ({status - bare:+.0f} ms over start-up)")
    print(f"(medians of {args.runs})")


if __name__ == "__main__":
    main()
