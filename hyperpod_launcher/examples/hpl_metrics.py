"""The open and DeepSpeed entries' side of the metrics contract: a Transformers Trainer
callback printing one `hpl-metrics {...}` line per logging step on rank 0, and the stack dump
the hang watchdog asks for (SIGUSR2).

Standard library and the training stack only: every backend ships this file beside the entry
script, so the lines appear in job images that lack the launcher."""

from __future__ import annotations

import faulthandler
import json
import signal
import sys
import time
from typing import Any

PREFIX = "hpl-metrics "  # the same as the per-node watcher's (node_watch.py)


def format_line(record: dict[str, Any]) -> str:
    return PREFIX + json.dumps(record, separators=(",", ":"))


def install_stack_dump() -> None:
    """On SIGUSR2, write every thread's Python stack to stderr (the per-node watcher asks
    for it when no step arrives for its window)."""
    faulthandler.register(signal.SIGUSR2, file=sys.stderr, all_threads=True, chain=False)


def model_shape(model: Any, seq_len: int | None) -> dict[str, int | None]:
    """What the model FLOPs per token need: parameters without the input embedding, layers,
    hidden size and the sequence length."""
    config = getattr(model, "config", None)
    params = sum(p.numel() for p in model.parameters())
    embedding = getattr(model, "get_input_embeddings", lambda: None)()
    if embedding is not None and getattr(embedding, "weight", None) is not None:
        params -= embedding.weight.numel()
    return {
        "params": int(params),
        "layers": getattr(config, "num_hidden_layers", None),
        "hidden": getattr(config, "hidden_size", None),
        "seq": seq_len or getattr(config, "max_position_embeddings", None),
    }


def _memory_gib() -> float | None:
    try:
        import torch

        if torch.cuda.is_available():
            return round(torch.cuda.max_memory_allocated() / 2**30, 2)
    except ImportError:
        pass
    return None


def _device_name() -> str | None:
    """The accelerator's name (MFU's peak where the job has no instance type, e.g. local)."""
    try:
        import torch

        if torch.cuda.is_available():
            return str(torch.cuda.get_device_name())
    except ImportError:
        pass
    return None


def hpl_metrics_callback(count_tokens: bool = True) -> Any:
    """A TrainerCallback for the contract; it also turns on the Trainer's token count (summed
    over every rank, so each step's tokens are counted once). `count_tokens=False` leaves the
    Trainer's count off and reports samples x sequence length instead."""
    from transformers import TrainerCallback

    class MetricsLine(TrainerCallback):
        def __init__(self) -> None:
            install_stack_dump()
            self.tokens = 0
            self.samples_step = 0
            self.step = 0
            self.clock = time.time()
            self.shape: dict[str, int | None] | None = None
            self.device: str | None = None

        def on_init_end(self, args: Any, state: Any, control: Any, **_: Any) -> None:
            if count_tokens and args.include_num_input_tokens_seen in ("no", False, None):
                args.include_num_input_tokens_seen = "all"

        def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            self.tokens = state.num_input_tokens_seen
            self.step = state.global_step
            self.clock = time.time()
            model = kw.get("model")
            if state.is_world_process_zero and model is not None:
                seq = getattr(args, "max_length", None) or getattr(args, "max_seq_length", None)
                self.shape = model_shape(model, seq)
                self.device = _device_name()

        def step_tokens(self, state: Any, samples: int) -> int:
            if count_tokens:
                return int(state.num_input_tokens_seen - self.tokens)
            return samples * int((self.shape or {}).get("seq") or 0)

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **_: Any) -> None:
            logs = logs or {}
            if "loss" not in logs or state.global_step == self.step:
                return  # evaluation or the end-of-training summary: not a training step
            now = time.time()
            steps = state.global_step - self.step
            world = max(1, int(getattr(args, "world_size", 1) or 1))
            samples = steps * args.per_device_train_batch_size * args.gradient_accumulation_steps
            record = {
                "event": "step",
                "step": state.global_step,
                "max_steps": state.max_steps,
                "loss": logs.get("loss"),
                "lr": logs.get("learning_rate"),
                "tokens": self.step_tokens(state, samples * world),
                "samples": samples * world,
                "steps": steps,
                "step_time_s": (now - self.clock) / steps,
                "time": now,
                "memory_gib": _memory_gib(),
                "device": self.device,
                "model": self.shape,
            }
            self.tokens, self.step, self.clock = state.num_input_tokens_seen, state.global_step, now
            if state.is_world_process_zero:
                print(format_line(record), flush=True)

    return MetricsLine()
