"""Open fine-tuning of a Hugging Face causal LM: SFT, DPO or GRPO with TRL, full or LoRA/QLoRA.

The entry script of the open fine-tuning recipes (`run.model_type: open_ft`). torchrun starts
one process per device with `--config-path=<job folder> --config-name=<name>_hydra.yaml`; the
resolved recipe holds every knob (see recipes/_base/open_ft.yaml). TRL's trainers do the
training; Transformers' Trainer brings DDP, FSDP or DeepSpeed (with the ds_config.json the
launcher wrote next to the recipe), checkpoints and resuming.

Trailing `key=value` arguments override recipe keys, as Hydra overrides do
(`exp_manager.resume_from_checkpoint=<dir>`). Without one, a restarted job (HPL_RESTART_COUNT
> 0) or a job whose output folder has a checkpoint resumes from the newest checkpoint there.

GRPO rewards are `module:function` (the module on PYTHONPATH or beside this script) or a
built-in: `format` (a completion that ends cleanly and is not empty) and `exact_match` (the
completion equals the dataset's `answer` column after trimming).

Job image: torch, transformers, trl, peft, datasets, accelerate, pyyaml; deepspeed for the
DeepSpeed strategy, bitsandbytes (CUDA) for QLoRA, tensorboard for logging.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

DATA_SUFFIXES = {".json": "json", ".jsonl": "json", ".parquet": "parquet"}
COLUMNS = {
    "sft": (("messages",), ("prompt", "completion"), ("text",)),
    "dpo": (("chosen", "rejected"),),
    "grpo": (("prompt",),),
}
CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


class RecipeError(Exception):
    """A problem with the recipe or its data, reported as one line."""


# --- recipe -------------------------------------------------------------------------------


def _parse_value(text: str) -> Any:
    return yaml.safe_load(text) if text else None


def apply_overrides(recipe: dict[str, Any], overrides: Sequence[str]) -> None:
    """`a.b=c` arguments (Hydra's override syntax, `+`/`++` prefixes allowed) set recipe keys."""
    for item in overrides:
        key, sep, value = item.lstrip("+").partition("=")
        if not sep or not re.match(r"^[A-Za-z_][\w.]*$", key):
            raise RecipeError(f"argument {item!r}: expected key=value")
        node = recipe
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise RecipeError(f"argument {item!r}: {part} is not a section")
        node[leaf] = _parse_value(value)


def load_recipe(config_path: str, config_name: str, overrides: Sequence[str]) -> dict[str, Any]:
    with open(os.path.join(config_path, config_name), encoding="utf-8") as handle:
        recipe = yaml.safe_load(handle)
    apply_overrides(recipe, overrides)
    return recipe


def section(recipe: dict[str, Any], dotted: str) -> dict[str, Any]:
    node: Any = recipe
    for part in dotted.split("."):
        node = (node or {}).get(part) if isinstance(node, dict) else None
    return node or {}


def output_dir(recipe: dict[str, Any], config_path: str) -> str:
    """checkpoint_dir, else <exp_dir>/checkpoints, else <job folder>/checkpoints."""
    exp = section(recipe, "exp_manager")
    if exp.get("checkpoint_dir"):
        return str(exp["checkpoint_dir"]).rstrip("/")
    base = exp.get("exp_dir") or config_path
    return os.path.join(str(base), "checkpoints")


def newest_checkpoint(folder: str) -> str | None:
    """The Trainer checkpoint with the highest step in `folder` (checkpoint-<step>/)."""
    found = []
    if os.path.isdir(folder):
        for name in os.listdir(folder):
            match = CHECKPOINT.match(name)
            if match and os.path.isfile(os.path.join(folder, name, "trainer_state.json")):
                found.append((int(match.group(1)), os.path.join(folder, name)))
    return max(found)[1] if found else None


def resume_point(recipe: dict[str, Any], out: str) -> str | None:
    """Where to resume: the recipe's resume_from_checkpoint when it names a checkpoint (or a
    folder of them), else the newest checkpoint in the output folder."""
    asked = section(recipe, "exp_manager").get("resume_from_checkpoint")
    if asked:
        asked = str(asked).rstrip("/")
        if os.path.isfile(os.path.join(asked, "trainer_state.json")):
            return asked
        inside = newest_checkpoint(asked)
        if inside:
            return inside
    return newest_checkpoint(out)


# --- data ---------------------------------------------------------------------------------


def data_files(location: str, key: str) -> tuple[str, list[str]]:
    """(datasets builder, files) for a JSON/JSONL/Parquet file or a folder of them."""
    path = Path(location)
    if path.is_file():
        files = [path]
    elif path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in DATA_SUFFIXES)
    else:
        raise RecipeError(f"{key}={location}: no such file or folder")
    if not files:
        raise RecipeError(f"{key}={location}: no .json, .jsonl or .parquet files there")
    kinds = {DATA_SUFFIXES.get(p.suffix) for p in files}
    if None in kinds or len(kinds) > 1:
        raise RecipeError(f"{key}={location}: mix of formats; use JSON/JSONL or Parquet files")
    return kinds.pop(), [str(p) for p in files]  # type: ignore[return-value]


def data_location(data: dict[str, Any], which: str) -> str | None:
    """A SageMaker channel (SM_CHANNEL_<NAME>, set inside a training job) wins over the path."""
    channel = data.get(f"{which}_channel")
    if channel:
        mounted = os.environ.get(f"SM_CHANNEL_{str(channel).upper()}")
        if mounted:
            return mounted
    value = data.get(f"{which}_dir")
    return str(value) if value else None


def load_split(location: str, key: str, method: str) -> Any:
    import datasets

    builder, files = data_files(location, key)
    dataset = datasets.load_dataset(builder, data_files=files, split="train")
    columns = set(dataset.column_names)
    if not any(set(need) <= columns for need in COLUMNS[method]):
        wanted = " or ".join("+".join(need) for need in COLUMNS[method])
        raise RecipeError(
            f"{key}={location}: {method} data needs the column(s) {wanted}; "
            f"found {', '.join(sorted(columns)) or 'none'}"
        )
    return dataset


def datasets_for(recipe: dict[str, Any], method: str) -> tuple[Any, Any]:
    data = section(recipe, "model.data")
    train_at = data_location(data, "train")
    if not train_at:
        raise RecipeError("model.data.train_dir=null: name a data file or folder")
    train = load_split(train_at, "model.data.train_dir", method)
    val_at = data_location(data, "val")
    if val_at:
        return train, load_split(val_at, "model.data.val_dir", method)
    fraction = float(data.get("eval_split") or 0)
    if fraction <= 0:
        return train, None
    parts = train.train_test_split(test_size=fraction, seed=int(data.get("seed") or 0))
    return parts["train"], parts["test"]


# --- GRPO rewards ---------------------------------------------------------------------------


def _text(completion: Any) -> str:
    if isinstance(completion, list):  # conversational: [{"role": ..., "content": ...}]
        return " ".join(str(m.get("content", "")) for m in completion if isinstance(m, dict))
    return str(completion)


def format_reward(completions: list[Any], **_: Any) -> list[float]:
    """1.0 for a non-empty completion of printable text, else 0.0."""
    return [1.0 if _text(c).strip() and _text(c).isprintable() else 0.0 for c in completions]


def exact_match_reward(
    completions: list[Any], answer: list[Any] | None = None, **_: Any
) -> list[float]:
    """1.0 where the trimmed completion equals the row's `answer`, else 0.0."""
    if answer is None:
        raise RecipeError("reward exact_match: the GRPO data needs an `answer` column")
    pairs = zip(completions, answer, strict=True)
    return [float(_text(c).strip() == str(a).strip()) for c, a in pairs]


BUILTIN_REWARDS: dict[str, Callable[..., list[float]]] = {
    "format": format_reward,
    "exact_match": exact_match_reward,
}


def reward_function(name: str) -> Callable[..., list[float]]:
    if name in BUILTIN_REWARDS:
        return BUILTIN_REWARDS[name]
    module_name, sep, attr = name.partition(":")
    if not sep or not module_name or not attr:
        raise RecipeError(
            f"method.grpo.reward_funcs: {name!r} is neither a built-in "
            f"({', '.join(BUILTIN_REWARDS)}) nor module:function"
        )
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    try:
        function = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as err:
        raise RecipeError(f"method.grpo.reward_funcs: cannot load {name!r}: {err}") from None
    if not callable(function):
        raise RecipeError(f"method.grpo.reward_funcs: {name!r} is not callable")
    return function


# --- model and trainer ----------------------------------------------------------------------


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def precision_flags(recipe: dict[str, Any]) -> dict[str, bool]:
    """bf16/fp16 mixed precision on CUDA; CPU processes train in fp32."""
    precision = section(recipe, "trainer").get("precision", "bf16")
    if not _cuda():
        return {"bf16": False, "fp16": False}
    return {"bf16": precision == "bf16", "fp16": precision == "fp16"}


def deepspeed_config(recipe: dict[str, Any], config_path: str) -> dict[str, Any] | None:
    if section(recipe, "model").get("strategy") != "deepspeed":
        return None
    name = section(recipe, "deepspeed").get("config_file") or "ds_config.json"
    with open(os.path.join(config_path, name), encoding="utf-8") as handle:
        return json.load(handle)


def trainer_arguments(
    recipe: dict[str, Any], method: str, out: str, ds: dict[str, Any] | None
) -> dict[str, Any]:
    """TrainingArguments (and the method's own) from the recipe; DeepSpeed's batch sizes,
    optimizer and schedule come from its generated config, so the two always agree."""
    trainer, model = section(recipe, "trainer"), section(recipe, "model")
    optim, exp = section(recipe, "model.optim"), section(recipe, "exp_manager")
    betas = list(optim.get("betas") or [0.9, 0.999])
    args: dict[str, Any] = {
        "output_dir": out,
        "max_steps": int(trainer.get("max_steps") or -1),
        "num_train_epochs": float(trainer.get("num_epochs") or 1),
        "per_device_train_batch_size": int(model.get("micro_batch_size") or 1),
        "per_device_eval_batch_size": int(model.get("micro_batch_size") or 1),
        "gradient_accumulation_steps": int(model.get("gradient_accumulation_steps") or 1),
        "learning_rate": float(optim.get("lr", 2e-5)),
        "weight_decay": float(optim.get("weight_decay", 0.0)),
        "adam_beta1": float(betas[0]),
        "adam_beta2": float(betas[1]),
        "adam_epsilon": float(optim.get("eps", 1e-8)),
        "optim": str(optim.get("name") or "adamw_torch"),
        "lr_scheduler_type": str(optim.get("scheduler") or "linear"),
        "warmup_steps": int(optim.get("warmup_steps") or 0),
        "max_grad_norm": float(trainer.get("grad_clip", 1.0)),
        "logging_steps": int(trainer.get("log_every_n_steps") or 10),
        "save_strategy": "steps" if exp.get("save_every_n_steps") else "no",
        "save_steps": int(exp.get("save_every_n_steps") or 500),
        "save_total_limit": exp.get("save_total_limit"),
        "seed": int(trainer.get("seed") or 42),
        "gradient_checkpointing": bool(model.get("gradient_checkpointing")),
        "gradient_checkpointing_kwargs": {"use_reentrant": False},
        "report_to": [],
        "disable_tqdm": True,
        "dataloader_num_workers": 0,
        "use_cpu": not _cuda(),  # without it, Transformers' CPU processes would not join (gloo)
        **precision_flags(recipe),
    }
    if exp.get("tensorboard", True):
        args["report_to"].append("tensorboard")
        os.environ.setdefault("TENSORBOARD_LOGGING_DIR", os.path.join(out, "tensorboard"))
    if exp.get("wandb_project"):  # WANDB_API_KEY reaches the job through the secret channel
        args["report_to"].append("wandb")
        os.environ.setdefault("WANDB_PROJECT", str(exp["wandb_project"]))
        args["run_name"] = str(section(recipe, "run").get("name") or "open-ft")
    eval_every = int(section(recipe, "model.data").get("eval_every_n_steps") or 0)
    if eval_every:
        args.update(eval_strategy="steps", eval_steps=eval_every)
    strategy = model.get("strategy") or "ddp"
    if strategy == "fsdp":
        fsdp = section(recipe, "model.fsdp")
        args["fsdp"] = "full_shard auto_wrap" + (" offload" if fsdp.get("cpu_offload") else "")
        args["fsdp_config"] = {"use_orig_params": True, "activation_checkpointing": False}
    elif strategy == "ddp" and _is_distributed():
        args["ddp_find_unused_parameters"] = False
    if ds is not None:
        args["deepspeed"] = ds
        args.update(_from_deepspeed(ds))
    args.update(method_arguments(recipe, method))
    return args


def _is_distributed() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def _from_deepspeed(ds: dict[str, Any]) -> dict[str, Any]:
    """The Trainer settings DeepSpeed's config fixes (Transformers rejects a mismatch)."""
    out: dict[str, Any] = {
        "per_device_train_batch_size": ds["train_micro_batch_size_per_gpu"],
        "gradient_accumulation_steps": ds["gradient_accumulation_steps"],
        "max_grad_norm": ds.get("gradient_clipping", 1.0),
    }
    if _cuda():
        out.update(bf16=ds["bf16"]["enabled"], fp16=ds["fp16"]["enabled"])
    params = (ds.get("optimizer") or {}).get("params") or {}
    if params:
        out.update(
            learning_rate=params["lr"],
            adam_beta1=params["betas"][0],
            adam_beta2=params["betas"][1],
            adam_epsilon=params["eps"],
            weight_decay=params["weight_decay"],
        )
    schedule = (ds.get("scheduler") or {}).get("params") or {}
    if "warmup_num_steps" in schedule:
        out["warmup_steps"] = schedule["warmup_num_steps"]
    if "total_num_steps" in schedule:
        out["max_steps"] = schedule["total_num_steps"]
    return out


def method_arguments(recipe: dict[str, Any], method: str) -> dict[str, Any]:
    model = section(recipe, "model")
    seq = int(model.get("max_context_width") or 1024)
    if method == "sft":
        return {
            "max_length": seq,
            "packing": bool(model.get("packing")),
            "dataset_num_proc": None,
        }
    knobs = section(recipe, f"method.{method}")
    if method == "dpo":
        return {
            "max_length": seq,
            "beta": float(knobs.get("beta", 0.1)),
            "loss_type": [str(knobs.get("loss_type") or "sigmoid")],
        }
    return {
        "num_generations": int(knobs.get("num_generations") or 4),
        "max_completion_length": int(knobs.get("max_completion_length") or 256),
        "temperature": float(knobs.get("temperature", 1.0)),
        "beta": float(knobs.get("beta", 0.0)),
        "log_completions": False,
    }


def quantization(recipe: dict[str, Any]) -> Any:
    if section(recipe, "model.peft").get("peft_type") != "qlora":
        return None
    import torch
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16,
    )


def peft_config(recipe: dict[str, Any]) -> Any:
    peft = section(recipe, "model.peft")
    if peft.get("peft_type") not in ("lora", "qlora"):
        return None
    from peft import LoraConfig

    targets = peft.get("target_modules") or "all-linear"
    return LoraConfig(
        r=int(peft.get("rank", 16)),
        lora_alpha=int(peft.get("alpha", 32)),
        lora_dropout=float(peft.get("dropout", 0.05)),
        target_modules=targets if isinstance(targets, str) else list(targets),
        task_type="CAUSAL_LM",
    )


def load_tokenizer(recipe: dict[str, Any]) -> Any:
    from transformers import AutoTokenizer

    model = section(recipe, "model")
    source = str(model["hf_model_name_or_path"])
    tokenizer = AutoTokenizer.from_pretrained(
        source, token=_token(), trust_remote_code=bool(model.get("trust_remote_code"))
    )
    template = model.get("chat_template")
    if template:
        path = Path(str(template))
        tokenizer.chat_template = path.read_text() if path.is_file() else str(template)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _token() -> str | None:
    return os.environ.get("HF_TOKEN") or None


def load_model(recipe: dict[str, Any]) -> Any:
    """Call after TrainingArguments exist: with a ZeRO-3 DeepSpeed config they make
    from_pretrained build the weights partitioned over the ranks (zero.Init)."""
    import torch
    from transformers import AutoModelForCausalLM

    model = section(recipe, "model")
    kwargs: dict[str, Any] = {
        "token": _token(),
        "trust_remote_code": bool(model.get("trust_remote_code")),
        "attn_implementation": model.get("attn_implementation") or "sdpa",
    }
    flags = precision_flags(recipe)
    full = not section(recipe, "model.peft").get("peft_type")
    if flags["bf16"] and not (full and model.get("strategy", "ddp") != "deepspeed"):
        kwargs["dtype"] = torch.bfloat16  # full DDP/FSDP keeps fp32 master weights under amp
    quant = quantization(recipe)
    if quant is not None:
        kwargs["quantization_config"] = quant
        kwargs["device_map"] = {"": int(os.environ.get("LOCAL_RANK", "0"))}
    return AutoModelForCausalLM.from_pretrained(str(model["hf_model_name_or_path"]), **kwargs)


def build_trainer(
    recipe: dict[str, Any], config_path: str, callbacks: Sequence[Any] = ()
) -> tuple[Any, str]:
    import trl

    method = str(section(recipe, "method").get("name") or "sft")
    if method not in COLUMNS:
        raise RecipeError(f"method.name={method}: must be one of {', '.join(COLUMNS)}")
    out = output_dir(recipe, config_path)
    ds = deepspeed_config(recipe, config_path)
    config_class = {"sft": trl.SFTConfig, "dpo": trl.DPOConfig, "grpo": trl.GRPOConfig}[method]
    args = config_class(**trainer_arguments(recipe, method, out, ds))
    train, evaluation = datasets_for(recipe, method)
    common: dict[str, Any] = {
        "model": load_model(recipe),
        "args": args,
        "train_dataset": train,
        "eval_dataset": evaluation,
        "processing_class": load_tokenizer(recipe),
        "peft_config": peft_config(recipe),
        "callbacks": [metrics_printer(), *hpl_metrics(), *callbacks],
    }
    if method == "sft":
        trainer = trl.SFTTrainer(**common)
    elif method == "dpo":
        trainer = trl.DPOTrainer(**common)
    else:
        names = section(recipe, "method.grpo").get("reward_funcs") or ["format"]
        rewards = [reward_function(str(n)) for n in names]
        trainer = trl.GRPOTrainer(reward_funcs=rewards, **common)
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)  # metrics_printer prints the same, as JSON
    return trainer, out


def metrics_printer() -> Any:
    """A callback printing one `open_ft step N {...}` JSON line per logging step, on rank 0."""
    from transformers import TrainerCallback

    class MetricsPrinter(TrainerCallback):
        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **_: Any) -> None:
            if state.is_world_process_zero and logs:
                print(f"open_ft step {state.global_step} {json.dumps(logs)}", flush=True)

    return MetricsPrinter()


def hpl_metrics() -> list[Any]:
    """The launcher's `hpl-metrics` line (status, jobs, --wait read it), where importable."""
    try:
        from hyperpod_launcher.telemetry.callback import hpl_metrics_callback
    except ImportError:  # the entry runs without the launcher installed
        return []
    return [hpl_metrics_callback()]


def save_final(trainer: Any, recipe: dict[str, Any], out: str) -> None:
    """The trained model (or LoRA adapter) in <output>/final; merged weights beside it when
    exp_manager.merge_adapter is set."""
    final = os.path.join(out, "final")
    trainer.save_model(final)
    trainer.save_state()
    if not trainer.is_world_process_zero():
        return
    trainer.processing_class.save_pretrained(final)
    if section(recipe, "model.peft").get("merge_on_save"):
        merged = trainer.accelerator.unwrap_model(trainer.model).merge_and_unload()
        merged.save_pretrained(os.path.join(out, "merged"))
        trainer.processing_class.save_pretrained(os.path.join(out, "merged"))
    print(f"open_ft: saved {final}", flush=True)


def train(recipe: dict[str, Any], config_path: str, callbacks: Sequence[Any] = ()) -> None:
    trainer, out = build_trainer(recipe, config_path, callbacks)
    restart = int(os.environ.get("HPL_RESTART_COUNT", "0") or 0)
    resume = resume_point(recipe, out)
    if trainer.is_world_process_zero():
        where = f"resuming from {resume}" if resume else "starting fresh"
        print(f"open_ft: attempt {restart + 1}, {where}; output {out}", flush=True)
    trainer.train(resume_from_checkpoint=resume)
    save_final(trainer, recipe, out)


def main(argv: Sequence[str] | None = None, callbacks: Sequence[Any] = ()) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config-path", required=True)
    parser.add_argument("--config-name", required=True)
    parser.add_argument("overrides", nargs="*", help="recipe key=value overrides")
    args = parser.parse_args(argv)
    try:
        recipe = load_recipe(args.config_path, args.config_name, args.overrides)
        train(recipe, args.config_path, callbacks)
    except RecipeError as err:
        print(f"error: {err}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None
    finally:
        _destroy_process_group()


def _destroy_process_group() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
