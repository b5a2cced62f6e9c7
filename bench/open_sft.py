"""Benchmark: a tiny open SFT run through the launcher (cluster=local) against a bare torchrun
of the same entry script and resolved recipe.

    python bench/open_sft.py [--steps 40] [--rounds 2]

Reports, per way of starting it, the time from start to the first optimizer step (the first
`open_ft step 1` line) and the steps per second after warm-up (step 5 to the last step), as
the median over the rounds. 2 gloo processes on CPU, a 2-layer Llama of hidden size 64.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests import tiny_lm  # noqa: E402

STEP = re.compile(r"open_ft step (\d+) \{\"loss\"")
WARM = 5


def timed_run(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(seconds to the first optimizer step, steps per second after warm-up)."""
    start = time.monotonic()
    seen: dict[int, float] = {}
    with subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            match = STEP.search(line)
            if match:
                seen.setdefault(int(match.group(1)), time.monotonic())
        if proc.wait() != 0:
            raise SystemExit(f"run failed: {' '.join(argv[:4])} ...")
    last = max(seen)
    return seen[1] - start, (last - WARM) / (seen[last] - seen[WARM])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="open-sft-bench-"))
    tiny = tiny_lm.build(root / "tiny")
    env = {
        **os.environ,
        **tiny_lm.OFFLINE_ENV,
        "HPL_STATE_DIR": str(root / "state"),
        "XDG_CACHE_HOME": str(root / "cache"),
        "PYTHONPATH": str(REPO),
    }
    launcher = [
        sys.executable,
        str(REPO / "main.py"),
        "recipes=fine-tuning/hf/open_causal_lm_gpu_sft_lora",
        "cluster=local",
        f"base_results_dir={root / 'results'}",
        "recipes.run.name=bench",
        "recipes.trainer.devices=2",
        f"recipes.model.hf_model_name_or_path={tiny.model}",
        f"recipes.model.data.train_dir={tiny.text}",
        "recipes.model.max_context_width=32",
        "recipes.model.micro_batch_size=4",
        "recipes.model.gradient_checkpointing=false",
        f"recipes.trainer.max_steps={args.steps}",
        "recipes.trainer.log_every_n_steps=1",
        "recipes.exp_manager.save_every_n_steps=0",
        "recipes.exp_manager.tensorboard=false",
    ]
    job = root / "results" / "bench"
    bare = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc-per-node=2",
        str(REPO / "hyperpod_launcher" / "examples" / "open_ft.py"),
        f"--config-path={job}",
        "--config-name=bench_hydra.yaml",
    ]
    results: dict[str, list[tuple[float, float]]] = {"launcher": [], "torchrun": []}
    for _ in range(args.rounds):
        results["launcher"].append(timed_run(launcher, env))
        results["torchrun"].append(timed_run(bare, env))  # the recipe the launcher resolved
    print(f"open SFT LoRA, tiny Llama, 2 gloo processes, {args.steps} steps, {args.rounds} rounds")
    print(f"{'start':<10}{'first step (s)':>16}{'steps/s after warm-up':>24}")
    medians = {}
    for name, rows in results.items():
        first = statistics.median(r[0] for r in rows)
        rate = statistics.median(r[1] for r in rows)
        medians[name] = (first, rate)
        print(f"{name:<10}{first:>16.2f}{rate:>24.2f}")
    (lf, lr), (tf, tr) = medians["launcher"], medians["torchrun"]
    print(f"launcher overhead: first step {100 * (lf / tf - 1):+.1f} %, "
          f"steps/s {100 * (1 - lr / tr):+.1f} %")  # fmt: skip


if __name__ == "__main__":
    main()
