"""Open fine-tuning of a Hugging Face causal LM: SFT, DPO or GRPO with TRL, full or LoRA/QLoRA.

The entry script of the open fine-tuning recipes (`run.model_type: open_ft`). torchrun starts
one process per device with `--config-path=<job folder> --config-name=<name>_hydra.yaml`; the
resolved recipe holds every knob (see recipes/_base/open_ft.yaml). TRL's trainers do the
training; Transformers' Trainer brings DDP, FSDP or DeepSpeed (with the ds_config.json the
launcher wrote next to the recipe), checkpoints and resuming.

Trailing `key=value` arguments override recipe keys, as Hydra overrides do
(`exp_manager.resume_from_checkpoint=<dir>`). Without one, a restarted job (HPL_RESTART_COUNT
> 0) or a job whose output folder has a checkpoint resumes from the newest checkpoint there,
but only one of this run: each checkpoint holds `run_identity.json` (a hash of the recipe's
training keys) and a checkpoint of another run is refused, never trained on.

GRPO rewards are `module:function` (the module on PYTHONPATH or beside this script) or a
built-in: `math_answer` (the final answer, `\\boxed{...}`, after `####` or else the last
number, equals the row's `answer`), `think_format` (one `<think>...</think>` block, then an
answer), `format` (a non-empty completion) and `exact_match` (the trimmed completion equals
`answer`). A reward function takes `completions` (and the dataset's other columns as keyword
lists) and returns one float per completion.

The final model goes to `$SM_MODEL_DIR` when that is set (SageMaker uploads it), else to
<output>/final.

Job image: torch, transformers, trl, peft, datasets, accelerate, pyyaml; deepspeed for the
DeepSpeed strategy, bitsandbytes (CUDA) for QLoRA, tensorboard for logging.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import importlib.util
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
IDENTITY_FILE = "run_identity.json"
# Recipe keys that do not change what a run trains: a checkpoint stays this run's when they do.
NOT_IDENTITY = {
    "trainer": ("devices", "num_nodes", "max_steps", "num_epochs", "log_every_n_steps"),
    "exp_manager": None,  # where outputs go and how often they are saved
    "model": ("hf_access_token", "gradient_checkpointing", "micro_batch_size"),
    "model.data": ("train_channel", "val_channel", "eval_every_n_steps"),
}
# Fused expert weights (nn.Parameter, not nn.Linear) of the MoE models in Transformers 5.
MOE_EXPERT_PARAMETERS = ("experts.gate_up_proj", "experts.down_proj")


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
    """checkpoint_dir, else <exp_dir>/<run name>/checkpoints, else <job folder>/checkpoints
    (the job folder is already the run's own)."""
    exp = section(recipe, "exp_manager")
    if exp.get("checkpoint_dir"):
        return str(exp["checkpoint_dir"]).rstrip("/")
    if exp.get("exp_dir"):
        name = str(section(recipe, "run").get("name") or "open-ft")
        return os.path.join(str(exp["exp_dir"]), name, "checkpoints")
    folder = os.path.abspath(config_path)
    if os.path.basename(os.path.dirname(folder)) == "launches":
        # the recipe sits in its launch's own folder: checkpoints stay with the run, two up
        folder = os.path.dirname(os.path.dirname(folder))
    return os.path.join(folder, "checkpoints")


def training_keys(recipe: dict[str, Any]) -> dict[str, Any]:
    """The recipe's keys that decide what a run trains, flattened (`model.optim.lr`: 2e-05)."""
    flat: dict[str, Any] = {}

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, f"{prefix}.{key}" if prefix else str(key))
        else:
            flat[prefix] = node

    walk(
        {
            k: v
            for k, v in recipe.items()
            if k in ("run", "trainer", "exp_manager", "model", "method", "deepspeed")
        },
        "",
    )
    for where, keys in NOT_IDENTITY.items():
        for key in list(flat):
            inside = key.startswith(where + ".") and "." not in key[len(where) + 1 :]
            if inside and (keys is None or key.rsplit(".", 1)[1] in keys):
                del flat[key]
    for key in (
        "run.results_dir",
        "run.time_limit",
        "run.instance_type",
        "run.entry_script",
        "run.code_repo",
        "deepspeed.config_file",
    ):
        flat.pop(key, None)
    return flat


def run_identity(recipe: dict[str, Any]) -> str:
    text = json.dumps(training_keys(recipe), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def write_identity(checkpoint: str, recipe: dict[str, Any]) -> None:
    record = {"identity": run_identity(recipe), "keys": training_keys(recipe)}
    with open(os.path.join(checkpoint, IDENTITY_FILE), "w", encoding="utf-8") as handle:
        json.dump(record, handle, indent=1, sort_keys=True, default=str)


def foreign_reason(checkpoint: str, recipe: dict[str, Any]) -> str | None:
    """Why `checkpoint` is not this run's, or None when it is."""
    path = os.path.join(checkpoint, IDENTITY_FILE)
    if not os.path.isfile(path):
        return f"{checkpoint} has no {IDENTITY_FILE}, so it cannot be matched to this run"
    with open(path, encoding="utf-8") as handle:
        record = json.load(handle)
    if record.get("identity") == run_identity(recipe):
        return None
    theirs, ours = record.get("keys") or {}, training_keys(recipe)
    changed = sorted(k for k in set(theirs) | set(ours) if theirs.get(k) != ours.get(k))
    shown = ", ".join(f"{k} {theirs.get(k)!r} -> {ours.get(k)!r}" for k in changed[:3])
    return f"{checkpoint} belongs to another run ({shown or 'different training keys'})"


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
    folder of them), else the newest checkpoint in the output folder; a checkpoint of another
    run (its recorded identity differs) is refused, so a changed recipe never resumes it."""
    asked = section(recipe, "exp_manager").get("resume_from_checkpoint")
    found = None
    if asked:
        asked = str(asked).rstrip("/")
        if os.path.isfile(os.path.join(asked, "trainer_state.json")):
            found = asked
        else:
            found = newest_checkpoint(asked)
    found = found or newest_checkpoint(out)
    if found:
        reason = foreign_reason(found, recipe)
        if reason:
            raise RecipeError(
                f"{reason}; refusing to resume it. Give this run its own folder (run.name or "
                "exp_manager.checkpoint_dir), or remove that checkpoint to start fresh"
            )
    return found


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
    """1.0 for a completion with visible text (newlines and tabs allowed), else 0.0."""
    return [1.0 if _text(c).strip() else 0.0 for c in completions]


BOXED = re.compile(r"\\boxed\{")
HASHES = re.compile(r"####\s*([^\n]+)")
NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def final_answer(text: str) -> str | None:
    """The last `\\boxed{...}` (braces balanced), else what follows the last `####`, else the
    last number in the text."""
    starts = [m.end() for m in BOXED.finditer(text)]
    if starts:
        depth, start = 1, starts[-1]
        for index in range(start, len(text)):
            depth += {"{": 1, "}": -1}.get(text[index], 0)
            if depth == 0:
                return text[start:index].strip()
        return None
    found = HASHES.findall(text)
    if found:
        return found[-1].strip()
    numbers = NUMBER.findall(text)
    return numbers[-1] if numbers else None


def _normal(answer: str) -> str:
    """Numbers compare by value (`1,000.0` is `1000`); other answers by trimmed text."""
    text = answer.strip().strip("$").strip().rstrip(".")
    if NUMBER.fullmatch(text):
        value = float(text.replace(",", ""))
        return str(int(value)) if value.is_integer() else str(value)
    return text


def math_answer_reward(
    completions: list[Any], answer: list[Any] | None = None, **_: Any
) -> list[float]:
    """1.0 where the completion's final answer (`\\boxed{}` or `####`) equals the row's
    `answer` (itself a plain value or a `####`-style solution), else 0.0."""
    if answer is None:
        raise RecipeError("reward math_answer: the GRPO data needs an `answer` column")
    scores = []
    for completion, expected in zip(completions, answer, strict=True):
        got = final_answer(_text(completion))
        found = HASHES.findall(str(expected))  # a GSM8K-style solution ends in `#### answer`
        want = found[-1].strip() if found else str(expected)
        scores.append(float(got is not None and _normal(got) == _normal(want)))
    return scores


THINK = re.compile(r"^\s*(?:<think>)?(?!.*<think>).*?</think>\s*\S", re.DOTALL)


def think_format_reward(completions: list[Any], **_: Any) -> list[float]:
    """1.0 for one reasoning block closed by `</think>` and followed by an answer (the
    opening `<think>` may be in the prompt, as R1-style templates put it), else 0.0."""
    return [
        float(bool(THINK.match(_text(c))) and _text(c).count("</think>") == 1) for c in completions
    ]


def exact_match_reward(
    completions: list[Any], answer: list[Any] | None = None, **_: Any
) -> list[float]:
    """1.0 where the trimmed completion equals the row's `answer`, else 0.0."""
    if answer is None:
        raise RecipeError("reward exact_match: the GRPO data needs an `answer` column")
    pairs = zip(completions, answer, strict=True)
    return [float(_text(c).strip() == str(a).strip()) for c, a in pairs]


BUILTIN_REWARDS: dict[str, Callable[..., list[float]]] = {
    "math_answer": math_answer_reward,
    "think_format": think_format_reward,
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
        # Liger's fused kernels (RMSNorm, SwiGLU, fused linear cross-entropy) when installed.
        "use_liger_kernel": _cuda() and importlib.util.find_spec("liger_kernel") is not None,
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
        # Rank 0 alone reads the weights; the others get them by broadcast when FSDP shards.
        args["fsdp_config"] = {
            "use_orig_params": True,
            "activation_checkpointing": False,
            "cpu_ram_efficient_loading": True,
            "sync_module_states": True,
        }
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
        packing = bool(model.get("packing"))
        flash = str(model.get("attn_implementation") or "").startswith("flash_attention")
        completion_only = model.get("completion_only_loss", True) is not False
        return {
            "max_length": seq,
            "packing": packing,
            # Padding-free batches need attention that honours sequence boundaries (FlashAttention).
            "padding_free": flash and not packing,
            # Prompt-completion rows: loss on the completion only (False: on every token).
            "completion_only_loss": None if completion_only else False,
            "dataset_num_proc": None,
        }
    knobs = section(recipe, f"method.{method}")
    if method == "dpo":
        return {
            "max_length": seq,
            "beta": float(knobs.get("beta", 0.1)),
            "loss_type": [str(knobs.get("loss_type") or "sigmoid")],
        }
    grpo: dict[str, Any] = {
        "num_generations": int(knobs.get("num_generations") or 4),
        "max_completion_length": int(knobs.get("max_completion_length") or 256),
        "temperature": float(knobs.get("temperature", 1.0)),
        "beta": float(knobs.get("beta", 0.0)),
        "log_completions": False,
    }
    if vllm_available():
        # TRL's colocate mode: vLLM shares each training GPU and generates far faster.
        grpo.update(use_vllm=True, vllm_mode="colocate", vllm_gpu_memory_utilization=0.3)
    return grpo


def vllm_available() -> bool:
    return _cuda() and importlib.util.find_spec("vllm") is not None


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
    extra: dict[str, Any] = {}
    if peft.get("target_parameters"):
        # Fused MoE experts are parameters, not nn.Linear: "all-linear" alone misses them.
        extra["target_parameters"] = [str(name) for name in peft["target_parameters"]]
        if float(peft.get("dropout", 0.05)):
            raise RecipeError(
                f"model.peft.dropout={peft.get('dropout', 0.05)}: LoRA on parameters "
                "(model.peft.target_parameters) takes no dropout; set model.peft.dropout=0"
            )
    return LoraConfig(
        r=int(peft.get("rank", 16)),
        lora_alpha=int(peft.get("alpha", 32)),
        lora_dropout=float(peft.get("dropout", 0.05)),
        target_modules=targets if isinstance(targets, str) else list(targets),
        task_type="CAUSAL_LM",
        **extra,
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


def load_dtype(recipe: dict[str, Any]) -> Any:
    """The dtype the weights load in, always explicit (Transformers 5 would otherwise load a
    bf16 checkpoint in bf16): full DDP/FSDP fine-tuning keeps fp32 master weights and fp32
    optimizer states under autocast; a LoRA base and DeepSpeed (which keeps its own fp32
    master copy in the optimizer) load in the 16-bit precision; CPU processes in fp32."""
    import torch

    flags = precision_flags(recipe)
    full = not section(recipe, "model.peft").get("peft_type")
    deepspeed = section(recipe, "model").get("strategy") == "deepspeed"
    if full and not deepspeed:
        return torch.float32
    if flags["bf16"]:
        return torch.bfloat16
    return torch.float16 if flags["fp16"] else torch.float32


def _checkpoint_config(source: str, model: dict[str, Any]) -> Any:
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(
        source, token=_token(), trust_remote_code=bool(model.get("trust_remote_code"))
    )


def mxfp4_checkpoint(source: str, model: dict[str, Any]) -> bool:
    """The checkpoint ships MXFP4 weights (GPT-OSS), which the Trainer cannot train."""
    quant = getattr(_checkpoint_config(source, model), "quantization_config", None) or {}
    method = quant.get("quant_method") if isinstance(quant, dict) else quant.quant_method
    return str(method) == "mxfp4"


# --- MXFP4 checkpoints under ZeRO-3 or FSDP: dequantize once, then load sharded -------------
# Transformers skips deepspeed.zero.Init whenever from_pretrained gets a quantization config,
# so `Mxfp4Config(dequantize=True)` under ZeRO-3 would build the whole bf16 model in every
# rank (and under FSDP every rank would hold its own dequantized copy). Instead one process
# writes a bf16 copy (MXFP4 values are exact in bf16) and every rank loads that copy without a
# quantization config.

DEQUANTIZED_MARKER = "dequantized_from.json"
DEQUANTIZE_WAIT_S = 4 * 3600  # how long the other ranks wait for the one writing the copy


def dequantized_dir(source: str, model: dict[str, Any]) -> str:
    """`$HF_HOME/dequantized/<name>-<fingerprint>` (`$HPL_DEQUANTIZED_DIR/<name>-<fingerprint>`
    where that is set, e.g. to keep the copy out of a folder SageMaker uploads): the fingerprint
    covers the source, its hub
    revision and, for a local folder, the size and time of its weight and config files, so a
    changed checkpoint gets a new copy."""
    from huggingface_hub import constants

    config = _checkpoint_config(source, model)
    local = os.path.isdir(source)
    parts = [
        os.path.abspath(source) if local else source,
        str(getattr(config, "_commit_hash", None)),
    ]
    if local:
        for name in sorted(os.listdir(source)):
            if name.endswith((".safetensors", ".json")):
                stat = os.stat(os.path.join(source, name))
                parts.append(f"{name}:{stat.st_size}:{stat.st_mtime_ns}")
    fingerprint = hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", source.rstrip("/").rsplit("/", 1)[-1]) or "model"
    root = os.environ.get("HPL_DEQUANTIZED_DIR") or os.path.join(constants.HF_HOME, "dequantized")
    return os.path.join(root, f"{name}-{fingerprint}")


def dequantized_complete(folder: str) -> bool:
    """A copy is complete once its marker is there: it is written under a temporary name and
    renamed when whole, so its folder never holds part of one."""
    return os.path.isfile(os.path.join(folder, DEQUANTIZED_MARKER))


def write_dequantized(source: str, model: dict[str, Any], target: str) -> bool:
    """Dequantize `source` into a bf16 checkpoint at `target`, atomically (a temporary folder
    beside it, then a rename). False when another process completed it first."""
    import glob
    import shutil
    import socket
    import time

    import torch
    from transformers import AutoModelForCausalLM, Mxfp4Config  # type: ignore[attr-defined]

    for partial in glob.glob(glob.escape(target) + ".partial-*"):
        # Older than any wait for it: left by an interrupted writer, not one still at work.
        if time.time() - os.path.getmtime(partial) > DEQUANTIZE_WAIT_S:
            shutil.rmtree(partial, ignore_errors=True)
    temporary = f"{target}.partial-{socket.gethostname()}-{os.getpid()}"
    full = AutoModelForCausalLM.from_pretrained(
        source,
        token=_token(),
        trust_remote_code=bool(model.get("trust_remote_code")),
        quantization_config=Mxfp4Config(dequantize=True),
        dtype=torch.bfloat16,
    )
    # Not save_pretrained: it writes on global rank 0 only, and in the checkpoint's original
    # format it would store the bf16 experts under their MXFP4 names (*_blocks), which no
    # loader reads back. The model's own parameter names load as they are.
    from huggingface_hub import save_torch_state_dict

    os.makedirs(temporary)
    save_torch_state_dict(
        full.state_dict(),
        temporary,
        metadata={"format": "pt"},
        shared_tensors_to_discard=list(getattr(full, "_tied_weights_keys", None) or []),
    )
    full.config.save_pretrained(temporary)
    if full.generation_config is not None:
        full.generation_config.save_pretrained(temporary)
    with open(os.path.join(temporary, DEQUANTIZED_MARKER), "w", encoding="utf-8") as handle:
        json.dump({"source": source, "dtype": "bfloat16"}, handle)
    del full
    try:
        os.rename(temporary, target)
    except OSError:
        if not dequantized_complete(target):
            raise
        shutil.rmtree(temporary, ignore_errors=True)
        return False
    return True


def _wait_for_all(group: Any, folder: str) -> None:
    import torch.distributed as dist

    try:
        dist.barrier(group=group)
    except RuntimeError as err:
        raise RuntimeError(
            f"open_ft: waiting for the dequantized copy {folder} failed (rank 0 writes it, or "
            f"a node's local rank 0 where rank 0's copy is not visible; the wait lasts up to "
            f"{DEQUANTIZE_WAIT_S} s): {err}"
        ) from None


def _wait_for_marker(folder: str) -> None:
    import time

    deadline = time.monotonic() + DEQUANTIZE_WAIT_S
    while not dequantized_complete(folder):
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"open_ft: waited {DEQUANTIZE_WAIT_S} s for rank 0 to write the dequantized "
                f"copy {folder}; it never completed (is HF_HOME on storage every rank sees?)"
            )
        time.sleep(5)


def dequantized_checkpoint(source: str, model: dict[str, Any]) -> str:
    """The bf16 copy of an MXFP4 checkpoint, written once and reused. Global rank 0 writes it
    while the other ranks wait; then the local rank 0 of any node that does not see it (HF_HOME
    on storage of that node only) writes that node's own. Without a process group, rank 0
    writes and the others poll for the copy's marker."""
    import torch.distributed as dist

    folder = dequantized_dir(source, model)
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    grouped = dist.is_available() and dist.is_initialized()
    if grouped:
        from datetime import timedelta

        rank = dist.get_rank()
        group = dist.new_group(backend="gloo", timeout=timedelta(seconds=DEQUANTIZE_WAIT_S))
    written = False
    if rank == 0 and not dequantized_complete(folder):
        os.makedirs(os.path.dirname(folder), exist_ok=True)
        written = write_dequantized(source, model, folder)
    if grouped:
        _wait_for_all(group, folder)
        if local_rank == 0 and rank != 0 and not dequantized_complete(folder):
            os.makedirs(os.path.dirname(folder), exist_ok=True)
            written = write_dequantized(source, model, folder)
        _wait_for_all(group, folder)  # the group goes with the job's own at its end
    elif rank != 0:
        _wait_for_marker(folder)
    if written or rank == 0:
        what = "dequantized to" if written else "reused"
        print(f"open_ft: MXFP4 checkpoint {source}: {what} the bf16 copy {folder}", flush=True)
    return folder


def loads_sharded(recipe: dict[str, Any]) -> bool:
    """ZeRO-3, whose zero.Init Transformers skips under a quantization config, or FSDP, whose
    ranks share the page cache of a memory-mapped bf16 checkpoint where dequantizing on load
    gives every rank a private copy of the whole model: both then load a bf16 copy."""
    from transformers.integrations import is_deepspeed_zero3_enabled

    return is_deepspeed_zero3_enabled() or section(recipe, "model").get("strategy") == "fsdp"


def load_model(recipe: dict[str, Any]) -> Any:
    """Call after TrainingArguments exist: with a ZeRO-3 DeepSpeed config they make
    from_pretrained build the weights partitioned over the ranks (zero.Init)."""
    from transformers import AutoModelForCausalLM

    model = section(recipe, "model")
    source = str(model["hf_model_name_or_path"])
    kwargs: dict[str, Any] = {
        "token": _token(),
        "trust_remote_code": bool(model.get("trust_remote_code")),
        "attn_implementation": model.get("attn_implementation") or "sdpa",
        "dtype": load_dtype(recipe),
    }
    quant = quantization(recipe)
    if quant is not None:
        kwargs["quantization_config"] = quant
        kwargs["device_map"] = {"": int(os.environ.get("LOCAL_RANK", "0"))}
    elif mxfp4_checkpoint(source, model):
        if loads_sharded(recipe):
            loaded = AutoModelForCausalLM.from_pretrained(
                dequantized_checkpoint(source, model), **kwargs
            )
            loaded.config.name_or_path = source
            return loaded
        from transformers import Mxfp4Config  # type: ignore[attr-defined]  # not in its stubs

        if _is_rank_zero():
            print(f"open_ft: MXFP4 checkpoint {source}: dequantized on load", flush=True)
        kwargs["quantization_config"] = Mxfp4Config(dequantize=True)
    return AutoModelForCausalLM.from_pretrained(source, **kwargs)


def build_trainer(
    recipe: dict[str, Any], config_path: str, callbacks: Sequence[Any] = ()
) -> tuple[Any, str]:
    import trl
    from transformers import Trainer

    method = str(section(recipe, "method").get("name") or "sft")
    if method not in COLUMNS:
        raise RecipeError(f"method.name={method}: must be one of {', '.join(COLUMNS)}")
    out = output_dir(recipe, config_path)
    ds = deepspeed_config(recipe, config_path)
    config_class = {"sft": trl.SFTConfig, "dpo": trl.DPOConfig, "grpo": trl.GRPOConfig}[method]
    args = config_class(**trainer_arguments(recipe, method, out, ds))
    train, evaluation = datasets_for(recipe, method)
    tokenizer = load_tokenizer(recipe)
    if method == "sft":
        args.assistant_only_loss = assistant_only(recipe, train, tokenizer)
    common: dict[str, Any] = {
        "model": load_model(recipe),
        "args": args,
        "train_dataset": train,
        "eval_dataset": evaluation,
        "processing_class": tokenizer,
        "peft_config": peft_config(recipe),
        "callbacks": [metrics_printer(), *hpl_metrics(), identity_recorder(recipe), *callbacks],
    }
    trainer: Trainer
    if method == "sft":
        trainer = trl.SFTTrainer(**common)
    elif method == "dpo":
        trainer = trl.DPOTrainer(**common)
    else:
        names = section(recipe, "method.grpo").get("reward_funcs") or ["format"]
        rewards = [reward_function(str(n)) for n in names]
        # trl types a reward's result as list[float | None] and lists are invariant
        trainer = trl.GRPOTrainer(reward_funcs=rewards, **common)  # type: ignore[arg-type]
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)  # metrics_printer prints the same, as JSON
    return trainer, out


def assistant_only(recipe: dict[str, Any], train: Any, tokenizer: Any) -> bool:
    """Chat rows train on the assistant turns only (model.completion_only_loss, default on)
    when the chat template marks them ({% generation %}) or TRL has a training template for
    it (e.g. R1-Distill's, which also keeps the reasoning the plain template cuts)."""
    if section(recipe, "model").get("completion_only_loss", True) is False:
        return False
    if "messages" not in train.column_names:
        return False
    from trl.chat_template_utils import get_training_chat_template, has_generation_markers

    template = tokenizer.chat_template
    if template and has_generation_markers(template):
        return True
    try:
        if get_training_chat_template(tokenizer) is not None:
            return True
    except (ValueError, TypeError):
        pass
    if _is_rank_zero():
        print(
            "open_ft: the chat template marks no assistant turns and TRL has no training "
            "template for it: the loss covers whole conversations (set model.chat_template to "
            "one with {% generation %} markers to train on the answers only)",
            flush=True,
        )
    return False


def _is_rank_zero() -> bool:
    return os.environ.get("RANK", "0") == "0"


def identity_recorder(recipe: dict[str, Any]) -> Any:
    """A callback writing run_identity.json into each checkpoint, on rank 0."""
    from transformers import TrainerCallback

    class IdentityRecorder(TrainerCallback):
        def on_save(self, args: Any, state: Any, control: Any, **_: Any) -> None:
            folder = os.path.join(args.output_dir, f"checkpoint-{state.global_step}")
            if state.is_world_process_zero and os.path.isdir(folder):
                write_identity(folder, recipe)

    return IdentityRecorder()


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
    try:  # shipped beside this script (the job's image need not have the launcher)
        from hpl_metrics import hpl_metrics_callback
    except ImportError:  # imported as a module of the launcher (tests, in-process runs)
        from hyperpod_launcher.examples.hpl_metrics import hpl_metrics_callback
    return [hpl_metrics_callback()]


def final_dir(out: str) -> str:
    """$SM_MODEL_DIR inside a SageMaker job (uploaded as model.tar.gz), else <output>/final."""
    return os.environ.get("SM_MODEL_DIR") or os.path.join(out, "final")


def save_final(trainer: Any, recipe: dict[str, Any], out: str) -> None:
    """The trained model (or LoRA adapter) in final_dir(); with model.peft.merge_on_save the
    merged model in <output>/merged, made by rank 0 alone after every rank has saved: it
    loads the base and the saved adapter afresh, so FSDP or ZeRO-3 shards never need merging."""
    final = final_dir(out)
    trainer.save_model(final)  # gathers the full state dict under FSDP and ZeRO-3
    trainer.save_state()
    if trainer.is_world_process_zero():
        trainer.processing_class.save_pretrained(final)
        print(f"open_ft: saved {final}", flush=True)
    if section(recipe, "model.peft").get("merge_on_save"):
        trainer.accelerator.wait_for_everyone()
        if trainer.is_world_process_zero():
            merge_adapter(recipe, final, os.path.join(out, "merged"))


def merge_adapter(recipe: dict[str, Any], adapter: str, target: str) -> None:
    """Base model + saved LoRA adapter -> one merged model (single process, on CPU)."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = section(recipe, "model")
    source = str(model["hf_model_name_or_path"])
    kwargs: dict[str, Any] = {
        "token": _token(),
        "trust_remote_code": bool(model.get("trust_remote_code")),
        "dtype": load_dtype(recipe),
    }
    mxfp4 = mxfp4_checkpoint(source, model)
    if mxfp4:
        from transformers import Mxfp4Config  # type: ignore[attr-defined]  # not in its stubs

        kwargs["quantization_config"] = Mxfp4Config(dequantize=True)
    base = AutoModelForCausalLM.from_pretrained(source, **kwargs)
    merged = PeftModel.from_pretrained(base, adapter).merge_and_unload()
    # Dequantized experts saved in the original format keep their MXFP4 names (*_blocks) and
    # reload as missing; their own names load as they are.
    merged.save_pretrained(target, save_original_format=not mxfp4)
    AutoTokenizer.from_pretrained(adapter).save_pretrained(target)
    print(f"open_ft: merged the adapter into {target}", flush=True)


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
