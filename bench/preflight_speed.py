"""Benchmark: what preflight costs, per backend.

    python bench/preflight_speed.py [--runs 20] [--remote]

In-process, on composed plans: the cheap (local) checks a launch runs by default (the
budget is 0.1 s), and with --remote every check against whatever cluster the environment
reaches (the Slurm testbed here; Kubernetes and SageMaker need KUBECONFIG / AWS settings).
Prints the median and the maximum per backend.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hyperpod_launcher.launch.compose import plan
from hyperpod_launcher.prepare import preflight

CASES = {
    "slurm": ("cluster=slurm", "training_cfg.run.nodes=2"),
    "k8s": ("cluster=k8s", "container=example.com/train:1"),
    "k8s hyperpod": (
        "cluster=k8s",
        "cluster.use_hyperpod_pytorch_job=true",
        "container=example.com/train:1",
    ),
    "sm_jobs": (
        "cluster=sm_jobs",
        "instance_type=ml.p5.48xlarge",
        "cluster.sm_jobs_config.output_path=s3://bucket/jobs",
    ),
}


def timed(the_plan: object, cheap_only: bool) -> float:
    start = time.perf_counter()
    preflight.run(the_plan, cheap_only=cheap_only, say=lambda _line: None)  # type: ignore[arg-type]
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--remote", action="store_true", help="also time every check")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for name, overrides in CASES.items():
            the_plan = plan((*overrides, f"base_results_dir={tmp}/{name.replace(' ', '-')}"))
            first = timed(the_plan, True)  # imports the checks module
            cheap = [timed(the_plan, True) for _ in range(args.runs)]
            line = (
                f"{name:13} cheap checks: first {first * 1000:.2f} ms, median "
                f"{statistics.median(cheap) * 1000:.2f} ms, max {max(cheap) * 1000:.2f} ms"
            )
            if args.remote:
                line += f"; all checks: {timed(the_plan, False):.2f} s"
            print(line)


if __name__ == "__main__":
    main()
