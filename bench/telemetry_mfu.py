"""Benchmark on one CUDA GPU: does `status --json` report the MFU the benchmark measures, and
what does the `hpl-metrics` callback cost?

    python bench/telemetry_mfu.py [--steps 40] [--out bench/results/telemetry_mfu.json]

The ~1.1B open SFT case of bench/open_sft_mfu.py (recipe defaults: fused AdamW, no
checkpointing). 1) Through the launcher (`cluster=local`): the benchmark's own MFU from the
mean step time of the entry's `open_ft step` lines after warm-up against `status --json`'s
`progress.mfu` (the callback's token count, model shape and GPU name). 2) The bare TRL script
without the callback, with it (the Trainer's cross-rank token count on) and with it counting
samples x sequence length instead, in turns (off, on, samples, off, on, samples): the
median step time of each and its cost over the run without.
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
from importlib import metadata
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import open_sft_mfu as base  # noqa: E402

CALLBACK_ARMS = {"off": "", "on": "on", "samples": "samples"}
# The bare script of open_sft_mfu.py, with the launcher's callback added per arm.
BARE = base.BARE.replace(
    "    callbacks=[Lines()])",
    "    callbacks=[Lines(), *metrics])",
).replace(
    "model_dir, data, optim, ckpt, steps = sys.argv[1:6]",
    "model_dir, data, optim, ckpt, steps = sys.argv[1:6]\n"
    "from hyperpod_launcher.examples.hpl_metrics import hpl_metrics_callback\n"
    "arm = sys.argv[7]\n"
    "metrics = [hpl_metrics_callback(count_tokens=arm == 'on')] if arm else []",
)


def version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument(
        "--rounds", type=int, default=2, help="turns of the callback arms (0: MFU only)"
    )
    parser.add_argument("--hidden", type=int, default=base.HIDDEN, help="smaller: a smoke run")
    parser.add_argument("--layers", type=int, default=base.LAYERS)
    parser.add_argument("--out", default=str(BENCH / "results" / "telemetry_mfu.json"))
    args = parser.parse_args()
    import torch

    assert BARE != base.BARE and "metrics = [" in BARE, "bench/open_sft_mfu.py's script changed"
    root = Path(tempfile.mkdtemp(prefix="telemetry-mfu-"))
    model_dir, data, params = base.build(root, args.hidden, args.layers)
    flops_per_token = 6 * params + 12 * args.layers * args.hidden * base.SEQ
    env = {**os.environ, **base.tiny_lm.OFFLINE_ENV, "HPL_STATE_DIR": str(root / "state")}
    env["PYTHONPATH"] = f"{base.REPO}{os.pathsep}{env.get('PYTHONPATH', '')}"
    setting = base.SETTINGS["new"]

    name = "telemetry-mfu"
    launcher = [
        sys.executable, str(base.REPO / "main.py"),
        "recipes=fine-tuning/hf/open_causal_lm_gpu_sft", "cluster=local",
        f"base_results_dir={root / 'results'}", f"recipes.run.name={name}",
        "recipes.trainer.devices=1",
        f"recipes.model.hf_model_name_or_path={model_dir}",
        f"recipes.model.data.train_dir={data}",
        f"recipes.model.max_context_width={base.SEQ}",
        f"recipes.model.max_position_embeddings={base.SEQ}",
        f"recipes.model.micro_batch_size={base.MICRO}",
        f"recipes.model.optim.name={setting['optim']}",
        "recipes.model.gradient_checkpointing=false",
        f"recipes.trainer.max_steps={args.steps}", "recipes.trainer.log_every_n_steps=1",
        "recipes.exp_manager.save_every_n_steps=0", "recipes.exp_manager.tensorboard=false",
    ]  # fmt: skip
    # The mean interval, i.e. the span from the first step after warm-up to the last over the
    # steps: torchrun --tee relays the lines by polling every 0.1 s, so single intervals come
    # in multiples of 0.1 s and their median is off by up to that much.
    launcher_step = statistics.mean(base.step_times(launcher, env))
    bench_mfu = base.MICRO * base.SEQ / launcher_step * flops_per_token / base.PEAK_BF16
    status = subprocess.run(
        [sys.executable, "-m", "hyperpod_launcher", "status", name, "--json"],
        env=env, capture_output=True, text=True, cwd=base.REPO, check=True,
    )  # fmt: skip
    progress = json.loads(status.stdout)["progress"]
    status_mfu = progress["mfu"]
    print(json.dumps({"bench_mfu": bench_mfu, "status_mfu": status_mfu}), flush=True)

    bare_script = root / "bare_sft.py"
    bare_script.write_text(BARE)
    times: dict[str, list[float]] = {arm: [] for arm in CALLBACK_ARMS}
    for turn in range(args.rounds):
        for arm, flag in CALLBACK_ARMS.items():
            bare = [
                sys.executable, str(bare_script), str(model_dir), str(data),
                str(setting["optim"]), "0", str(args.steps), str(root / f"bare-{arm}-{turn}"),
                flag,
            ]  # fmt: skip
            times[arm].append(statistics.median(base.step_times(bare, env)))
            print(json.dumps({"arm": arm, "turn": turn, "step_s": times[arm][-1]}), flush=True)
    medians = {arm: statistics.median(values) for arm, values in times.items() if values}

    result = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none (CPU)",
        "versions": {
            n: version(n) for n in ("torch", "transformers", "trl", "accelerate", "datasets")
        },
        "model": {
            "parameters_without_embedding": params,
            "hidden": args.hidden,
            "layers": args.layers,
            "sequence": base.SEQ,
            "micro_batch": base.MICRO,
            "flops_per_token": flops_per_token,
        },
        "steps": args.steps,
        "mfu": {
            "launcher_step_s": round(launcher_step, 4),
            "bench": round(bench_mfu, 4),
            "status": status_mfu,
            "status_over_bench": round(status_mfu / bench_mfu, 4) if status_mfu else None,
            "status_progress": progress,
        },
        "callback": {
            "step_s": {arm: [round(t, 4) for t in values] for arm, values in times.items()},
            "median_step_s": {arm: round(t, 4) for arm, t in medians.items()},
        }
        | (
            {
                "cost_token_count": round(medians["on"] / medians["off"] - 1, 4),
                "cost_samples_x_sequence": round(medians["samples"] / medians["off"] - 1, 4),
            }
            if medians
            else {}
        ),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: result[k] for k in ("mfu", "callback")}, indent=1))
    print(f"results: {args.out}")


if __name__ == "__main__":
    main()
