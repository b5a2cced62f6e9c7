"""Benchmark on one CUDA GPU: full SFT of a ~1.1B Llama-shaped model (hidden 2048, 22 layers,
built on the spot, saved in bf16 as hub checkpoints are) at 2048 tokens and micro batch 8,
through the launcher (`cluster=local`) and through a bare TRL script with the same settings.

    python bench/open_sft_mfu.py [--steps 30] [--out bench/results/open_sft_mfu.json]

The bare script also runs under `torchrun --nproc-per-node=1` (`bare_torchrun`), which the
launcher always uses, to tell its cost from the launcher's. Two settings: `old` (AdamW
unfused, gradient checkpointing on: the earlier recipe defaults) and `new` (the recipe defaults
now: fused AdamW, no checkpointing); `--settings` and `--ways` pick some. Both sides use Liger's
kernels when `liger_kernel` is importable, as the entry does. For each it reports the mean step
time after warm-up (the span over the steps: torchrun's `--tee` relays lines by polling every
0.1 s, so single intervals come in multiples of 0.1 s and their median is off by up to that),
tokens per second, MFU (model FLOPs per token: 6 x parameters without the input embedding +
12 x layers x hidden x sequence, over the dense bf16 peak: 989
TFLOP/s for H100 SXM and H200) and the launcher's step time over the bare script's.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests import tiny_lm  # noqa: E402

PEAK_BF16 = 989e12
SEQ, MICRO, HIDDEN, LAYERS = 2048, 8, 2048, 22
STEP = re.compile(r"open_ft step (\d+) \{\"loss\"")
WARM = 5
SETTINGS = {
    "old": {"optim": "adamw_torch", "gradient_checkpointing": True},
    "new": {"optim": "adamw_torch_fused", "gradient_checkpointing": False},
}

BARE = """
import importlib.util, json, sys, datasets, torch, trl
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
model_dir, data, optim, ckpt, steps = sys.argv[1:6]
liger = torch.cuda.is_available() and importlib.util.find_spec("liger_kernel") is not None
class Lines(TrainerCallback):
    def on_log(self, args, state, control, logs=None, **_):
        print(f"open_ft step {state.global_step} {json.dumps(logs)}", flush=True)
args = trl.SFTConfig(output_dir=sys.argv[6], max_steps=int(steps), per_device_train_batch_size=8,
    learning_rate=2e-5, lr_scheduler_type="cosine", optim=optim, bf16=True, max_length=2048,
    gradient_checkpointing=ckpt == "1", gradient_checkpointing_kwargs={"use_reentrant": False},
    logging_steps=1, save_strategy="no", report_to=[], disable_tqdm=True, dataloader_num_workers=0,
    dataset_num_proc=None, seed=42,
    use_liger_kernel=liger)
model = AutoModelForCausalLM.from_pretrained(
    model_dir, dtype=torch.float32, attn_implementation="sdpa")
trainer = trl.SFTTrainer(
    model=model, args=args, processing_class=AutoTokenizer.from_pretrained(model_dir),
    train_dataset=datasets.load_dataset("json", data_files=data, split="train"),
    callbacks=[Lines()])
trainer.train()
"""


def build(root: Path, hidden: int, layers: int) -> tuple[Path, Path, int]:
    """(model folder, text data, parameters without the input embedding)."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tiny = tiny_lm.build(root / "tiny")  # its byte-level tokenizer serves the big model
    tokenizer = AutoTokenizer.from_pretrained(tiny.model)
    config = LlamaConfig(
        vocab_size=32000,
        hidden_size=hidden,
        intermediate_size=hidden * 11 // 4,
        num_hidden_layers=layers,
        num_attention_heads=32,
        num_key_value_heads=4,
        max_position_embeddings=SEQ,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = LlamaForCausalLM(config).to(torch.bfloat16)
    params = (
        sum(p.numel() for p in model.parameters()) - model.get_input_embeddings().weight.numel()
    )
    model_dir = root / "model"
    model.save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    rng = random.Random(0)
    words = tiny_lm.WORDS
    rows = [" ".join(rng.choice(words) for _ in range(3000)) for _ in range(MICRO * 80)]
    data = root / "text.jsonl"
    data.write_text("".join(json.dumps({"text": r}) + "\n" for r in rows))
    return model_dir, data, params


def step_times(argv: list[str], env: dict[str, str]) -> list[float]:
    """Seconds between consecutive logged optimizer steps after the warm-up."""
    seen: dict[int, float] = {}
    with subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO
    ) as proc:
        assert proc.stdout is not None
        tail: list[str] = []
        for line in proc.stdout:
            tail = [*tail[-40:], line]
            match = STEP.search(line)
            if match:
                seen.setdefault(int(match.group(1)), time.monotonic())
        if proc.wait() != 0:
            raise SystemExit("run failed:\n" + "".join(tail))
    steps = sorted(s for s in seen if s >= WARM)
    return [seen[b] - seen[a] for a, b in itertools.pairwise(steps)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--hidden", type=int, default=HIDDEN, help="smaller: a quick smoke run")
    parser.add_argument("--layers", type=int, default=LAYERS)
    parser.add_argument("--settings", default=",".join(SETTINGS), help="comma-separated")
    parser.add_argument("--ways", default="launcher,bare,bare_torchrun", help="comma-separated")
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "open_sft_mfu.json"))
    args = parser.parse_args()
    import torch

    root = Path(tempfile.mkdtemp(prefix="open-sft-mfu-"))
    model_dir, data, params = build(root, args.hidden, args.layers)
    flops_per_token = 6 * params + 12 * args.layers * args.hidden * SEQ
    env = {**os.environ, **tiny_lm.OFFLINE_ENV, "HPL_STATE_DIR": str(root / "state")}
    env["PYTHONPATH"] = f"{REPO}{os.pathsep}{env.get('PYTHONPATH', '')}"
    bare_script = root / "bare_sft.py"
    bare_script.write_text(BARE)
    rows = []
    for name in args.settings.split(","):
        setting = SETTINGS[name]
        launcher = [
            sys.executable,
            str(REPO / "main.py"),
            "recipes=fine-tuning/hf/open_causal_lm_gpu_sft",
            "cluster=local",
            f"base_results_dir={root / 'results'}",
            f"recipes.run.name=mfu-{name}",
            "recipes.trainer.devices=1",
            f"recipes.model.hf_model_name_or_path={model_dir}",
            f"recipes.model.data.train_dir={data}",
            f"recipes.model.max_context_width={SEQ}",
            f"recipes.model.max_position_embeddings={SEQ}",
            f"recipes.model.micro_batch_size={MICRO}",
            f"recipes.model.optim.name={setting['optim']}",
            f"recipes.model.gradient_checkpointing={str(setting['gradient_checkpointing']).lower()}",
            f"recipes.trainer.max_steps={args.steps}",
            "recipes.trainer.log_every_n_steps=1",
            "recipes.exp_manager.save_every_n_steps=0",
            "recipes.exp_manager.tensorboard=false",
        ]
        bare = [
            sys.executable,
            str(bare_script),
            str(model_dir),
            str(data),
            str(setting["optim"]),
            "1" if setting["gradient_checkpointing"] else "0",
            str(args.steps),
            str(root / f"bare-{name}"),
        ]
        torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node=1", *bare[1:]]
        every = {"launcher": launcher, "bare": bare, "bare_torchrun": torchrun}
        ways = [(way, every[way]) for way in args.ways.split(",")]
        times = {way: statistics.mean(step_times(argv, env)) for way, argv in ways}
        for way, seconds in times.items():
            tokens = MICRO * SEQ / seconds
            rows.append(
                {
                    "setting": name,
                    **setting,
                    "way": way,
                    "step_s": round(seconds, 4),
                    "tokens_per_s": round(tokens),
                    "mfu": round(tokens * flops_per_token / PEAK_BF16, 4),
                }
            )
        if {"launcher", "bare"} <= times.keys():
            over = round(times["launcher"] / times["bare"], 3)
            rows.append({"setting": name, "launcher_over_bare": over})
        print(json.dumps(rows[-len(ways) - 1 :]), flush=True)

    def version(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "not installed"

    result = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none (CPU)",
        "versions": {
            n: version(n)
            for n in ("torch", "transformers", "trl", "accelerate", "liger-kernel", "flash-attn")
        },
        "model": {
            "parameters_without_embedding": params,
            "hidden": HIDDEN,
            "layers": LAYERS,
            "sequence": SEQ,
            "micro_batch": MICRO,
            "flops_per_token": flops_per_token,
        },
        "peak_bf16_flops": PEAK_BF16,
        "steps": args.steps,
        "rows": rows,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(f"results: {args.out}")


if __name__ == "__main__":
    main()
