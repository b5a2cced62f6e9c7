"""Launch-time checks of a composed recipe: one line per problem, before anything is written.

Each recipe belongs to a stack, named by `run.model_type`, and each stack has its own rules:
- adapter (`hf`, the HyperPod training adapter, SMP v2 + FSDP): world = nodes x devices;
  world % (tensor x expert x shard) == 0 (hybrid sharding replicates over the rest);
  context parallel divides shard; tensor/expert parallel > 1 need use_smp_model.
- neuron (`neuron-hf`, NxD Training on Trainium) and nemo (Megatron): world % (tensor x
  pipeline [x context]) == 0 and global batch % (micro batch x data parallel) == 0.
- open (`open_ft`, TRL SFT/DPO/GRPO): method, PEFT keys that fit it, GRPO generations that
  divide the generation batch; QLoRA needs CUDA. With DeepSpeed: train batch = micro batch x
  gradient accumulation x data parallel (ds_config).
- nova (`amazon.nova-*`, AWS's Nova images): replicas and batch sizes in the sets its model
  and method allow (nova.check); it runs only where a backend's registry entry lists it.
All other stacks: sequence length <= max position embeddings; PEFT only with do_finetune;
fine-tuning needs a model to start from; data paths absolute or s3:// URIs. Keys, types, ranges
and enums of single values are the recipe kind's schema (config/recipe_schema.py), checked
before these.
Rules that need the hardware (Trainium vs GPU, fp8 on the p5 family only) run when
`instance_type` is given; a recipe's `run.instance_type` only says what it was sized for.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hyperpod_launcher import backends
from hyperpod_launcher.config.instances import InstanceType
from hyperpod_launcher.config.rules import Count
from hyperpod_launcher.config.validate import check_value
from hyperpod_launcher.spec import local_gpus
from hyperpod_launcher.stacks import deepspeed_config as ds_config
from hyperpod_launcher.stacks import nova
from hyperpod_launcher.util.dotted import get as _get
from hyperpod_launcher.util.errors import UserError

STACKS = {
    "hf": "adapter",
    "neuron-hf": "neuron",
    "nemo": "nemo",
    "open_ft": "open",
}
URI = re.compile(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/\S*)?$")
FORCE_FP8 = "force_fp8"
OFFLOAD = {"optimizer": "optimizer state", "param": "parameters"}


@dataclass(frozen=True)
class Layout:
    """How a recipe spreads over the world: its parallel degrees, derived data parallelism."""

    stack: str
    world: int
    degrees: dict[str, int] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def __str__(self) -> str:
        text = " ".join(f"{k}{v}" for k, v in self.degrees.items())
        return ", ".join([text, *self.notes]) if text else ", ".join(self.notes)


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "null" if value is None else str(value)


def _degree(recipe: Mapping[str, Any], key: str, default: int = 1) -> int:
    value = _get(recipe, key)
    if value is None:
        return default
    return check_value(value, Count, f"recipes.{key}")


def stack_of(recipe: Mapping[str, Any]) -> str:
    model_type = _get(recipe, "run.model_type")
    if nova.is_nova(recipe):  # amazon.nova-<model>-v1:...: many model types, one stack
        return "nova"
    if model_type in STACKS:
        return STACKS[model_type]
    if isinstance(recipe.get("distributed_strategy"), Mapping):
        return "neuron"
    return "adapter"


def accelerator_of(recipe: Mapping[str, Any]) -> str:
    return "neuron" if stack_of(recipe) == "neuron" else "gpu"


def _world_text(nodes: int, devices: int, stack: str) -> str:
    unit = "NeuronCores" if stack == "neuron" else "devices"
    return f"the world size {nodes * devices} ({nodes} nodes x {devices} {unit})"


def _check_instance(recipe: Mapping[str, Any], instance: InstanceType, force_fp8: bool) -> None:
    stack = stack_of(recipe)
    model_type = _get(recipe, "run.model_type", "hf")
    if stack == "neuron" and instance.accelerator != "neuron":
        raise UserError(
            f"instance_type={instance.name}: this is a Trainium recipe (run.model_type="
            f"{model_type}) and needs a Trainium instance such as trn1.32xlarge"
        )
    if stack != "neuron" and instance.accelerator == "neuron":
        raise UserError(
            f"instance_type={instance.name}: this is a GPU recipe (run.model_type={model_type}) "
            "and cannot run on Trainium; use a GPU instance such as p5.48xlarge"
        )
    fp8 = stack == "adapter" and _get(recipe, "model.fp8") is True
    if fp8 and not force_fp8 and not instance.fp8_adapter:
        raise UserError(
            f"recipes.model.fp8=true: the training adapter supports fp8 on the p5 family only, "
            f"not on instance_type={instance.name}; set recipes.model.fp8=false "
            f"(or {FORCE_FP8}=true to try it anyway)"
        )


def _adapter_layout(recipe: Mapping[str, Any], nodes: int, devices: int) -> Layout:
    world = nodes * devices
    tp = _degree(recipe, "model.tensor_model_parallel_degree")
    ep = _degree(recipe, "model.expert_model_parallel_degree")
    cp = _degree(recipe, "model.context_parallel_degree")
    shard = _degree(recipe, "model.shard_degree")
    if world % (tp * ep * shard):
        raise UserError(
            f"recipes.model.shard_degree={shard}: tensor_model_parallel_degree {tp} x "
            f"expert_model_parallel_degree {ep} x shard_degree {shard} = {tp * ep * shard} must "
            f"divide {_world_text(nodes, devices, 'adapter')}"
        )
    if shard % cp:
        raise UserError(
            f"recipes.model.context_parallel_degree={cp}: must divide shard_degree {shard}"
        )
    if not _get(recipe, "use_smp_model", True):
        for key, value in (("tensor", tp), ("expert", ep)):
            if value > 1:
                raise UserError(
                    f"recipes.model.{key}_model_parallel_degree={value}: needs "
                    "recipes.use_smp_model=true (plain FSDP has no tensor or expert parallelism)"
                )
    replicas = world // (tp * ep * shard)
    notes = [f"{replicas} replicas"] if replicas > 1 else []
    if _get(recipe, "model.fp8") is True:
        notes.append("fp8")
    degrees = {"TP": tp, "shard": shard, "CP": cp, "EP": ep}
    return Layout("adapter", world, degrees, tuple(notes))


def _product_text(degrees: Mapping[str, int]) -> str:
    return " x ".join(f"{k}{v}" for k, v in degrees.items())


def _megatron_layout(
    recipe: Mapping[str, Any], nodes: int, devices: int, stack: str, keys: dict[str, str]
) -> Layout:
    """World % (TP x PP [x CP]) and global batch % (micro batch x data parallel)."""
    world = nodes * devices
    degrees = {name: _degree(recipe, key) for name, key in keys.items() if name != "batch"}
    product = 1
    for value in degrees.values():
        product *= value
    if world % product:
        name = "PP" if degrees.get("PP", 1) > 1 else "TP"
        raise UserError(
            f"recipes.{keys[name]}={degrees[name]}: {_product_text(degrees)} = {product} must "
            f"divide "
            f"{_world_text(nodes, devices, stack)}"
        )
    dp = world // product
    micro_key, global_key = keys["batch"].split(",")
    micro = _degree(recipe, micro_key)
    total = _degree(recipe, global_key)
    if total % (micro * dp):
        raise UserError(
            f"recipes.{global_key}={total}: must be a multiple of micro batch {micro} x data "
            f"parallel {dp} = {micro * dp} (data parallel = world {world} / "
            f"{_product_text(degrees)})"
        )
    notes = [f"global batch {total} = micro {micro} x DP {dp} x {total // (micro * dp)} steps"]
    if _get(recipe, "distributed_strategy.zero1"):
        notes.insert(0, "ZeRO-1")
    return Layout(stack, world, {**degrees, "DP": dp}, tuple(notes))


NEURON_KEYS = {
    "TP": "distributed_strategy.tensor_model_parallel_size",
    "PP": "distributed_strategy.pipeline_model_parallel_size",
    "batch": "data.micro_batch_size,data.global_batch_size",
}
NEMO_KEYS = {
    "TP": "model.tensor_model_parallel_size",
    "PP": "model.pipeline_model_parallel_size",
    "CP": "model.context_parallel_size",
    "batch": "model.micro_batch_size,model.global_batch_size",
}
# (sequence length key, max position embeddings key) per stack
SEQUENCE_KEYS = {
    "adapter": ("model.max_context_width", "model.max_position_embeddings"),
    "open": ("model.max_context_width", "model.max_position_embeddings"),
    "neuron": ("model.encoder_seq_length", "model.max_position_embeddings"),
    "nemo": ("model.encoder_seq_length", "model.max_position_embeddings"),
}
# keys holding data locations per stack
DATA_KEYS = {
    "adapter": ("model.data.train_dir", "model.data.val_dir"),
    "open": ("model.data.train_dir", "model.data.val_dir"),
    "neuron": ("data.train_dir", "data.val_dir", "model.model_config"),
    "nemo": ("model.data.data_prefix",),
}


def _check_sequence(recipe: Mapping[str, Any], stack: str) -> None:
    seq_key, max_key = SEQUENCE_KEYS[stack]
    seq, limit = _get(recipe, seq_key), _get(recipe, max_key)
    if seq is None:
        return
    seq = _degree(recipe, seq_key)
    if limit is not None and seq > _degree(recipe, max_key):
        raise UserError(
            f"recipes.{seq_key}={seq}: the sequence length must not exceed "
            f"{max_key.rsplit('.', 1)[-1]} {limit}"
        )


def _check_finetuning(recipe: Mapping[str, Any], stack: str) -> None:
    if stack != "adapter":
        return
    peft = _get(recipe, "model.peft.peft_type")
    finetune = _get(recipe, "model.do_finetune", False)
    if peft is not None and not finetune:
        raise UserError(
            f"recipes.model.peft.peft_type={peft}: PEFT adapts pretrained weights, so it needs "
            "recipes.model.do_finetune=true"
        )
    model = _get(recipe, "model.hf_model_name_or_path")
    if finetune and (model is None or not str(model).strip()):
        raise UserError(
            f"recipes.model.hf_model_name_or_path={_fmt(model)}: fine-tuning starts from "
            "pretrained weights; name a Hugging Face model id or a path "
            "(HF_MODEL_NAME_OR_PATH in the launch scripts)"
        )


def s3_problem(value: str) -> str | None:
    """Why an s3:// URI is not s3://<bucket>[/<prefix>] with a valid bucket name, or None."""
    if URI.match(value):
        return None
    bucket = value[len("s3://") :].split("/", 1)[0]
    return (
        f"bucket {bucket!r} is not an S3 bucket name (3-63 characters of lowercase letters, "
        "digits, '.' and '-', starting and ending with a letter or digit); expected "
        "s3://<bucket>/<prefix>"
    )


def _path_problem(value: Any) -> str | None:
    if not isinstance(value, str) or not value:
        return "must be a non-empty string"
    if any(c.isspace() for c in value):
        return "must not contain whitespace"
    if value.startswith("s3://"):
        return s3_problem(value)
    if "://" in value:
        return "only s3:// URIs are supported"
    if not value.startswith("/"):
        return "must be an absolute path or an s3:// URI (jobs do not run in this directory)"
    return None


def _check_data(recipe: Mapping[str, Any], stack: str) -> None:
    for key in DATA_KEYS.get(stack, ()):
        value = _get(recipe, key)
        items = value if isinstance(value, list) else [value]
        for item in items:
            if item is None or (stack == "nemo" and isinstance(item, (int, float))):
                continue  # unset, or a Megatron blend weight
            problem = _path_problem(item)
            if problem:
                raise UserError(f"recipes.{key}={_fmt(value)}: {problem}")


OPEN_METHODS = ("sft", "dpo", "grpo")


def _open_peft(recipe: Mapping[str, Any]) -> str | None:
    """The PEFT kind; PEFT keys on a full-weights recipe do not fit it (the schema has the
    types and values)."""
    peft = _get(recipe, "model.peft") or {}
    kind = peft.get("peft_type")
    for key, value in peft.items():
        if kind is None and key != "peft_type" and value is not None:
            raise UserError(
                f"recipes.model.peft.{key}={_fmt(value)}: PEFT keys need "
                "recipes.model.peft.peft_type=lora or qlora (this recipe trains full weights)"
            )
    if kind == "qlora" and peft.get("merge_on_save"):
        raise UserError(
            "recipes.model.peft.merge_on_save=true: a 4-bit QLoRA base cannot take merged "
            "weights; merge the saved adapter into the bf16 base afterwards"
        )
    return kind


def _open_layout(recipe: Mapping[str, Any], nodes: int, devices: int) -> Layout:
    world = nodes * devices
    method = _get(recipe, "method.name", "sft")
    for other in OPEN_METHODS:
        if other != method and _get(recipe, f"method.{other}") is not None:
            raise UserError(
                f"recipes.method.{other}: {other} settings do not fit recipes.method.name="
                f"{method}; remove them"
            )
    peft = _open_peft(recipe)
    strategy = _get(recipe, "model.strategy", "ddp")
    if (strategy == "deepspeed") != isinstance(recipe.get("deepspeed"), Mapping):
        raise UserError(
            f"recipes.model.strategy={strategy}: the `deepspeed` section goes with strategy "
            "deepspeed only (its ds_config.json sets batch sizes and ZeRO)"
        )
    if peft == "qlora" and strategy != "ddp":
        raise UserError(
            f"recipes.model.strategy={strategy}: QLoRA runs with ddp (one 4-bit base per GPU)"
        )
    notes = [strategy]
    if strategy == "deepspeed":
        if _get(recipe, "trainer.max_steps", -1) <= 0:
            raise UserError(
                "recipes.trainer.max_steps=-1: DeepSpeed's schedule needs a step count; "
                "set recipes.trainer.max_steps"
            )
        ds_config.check(recipe, world)
        micro, accum, total = ds_config.batch(recipe, world)
        section = recipe.get("deepspeed") or {}
        notes[-1] = f"ZeRO-{section.get('zero_stage')}"
        offload = [w for k, w in OFFLOAD.items() if section.get(f"offload_{k}")]
        if offload:
            notes.append("CPU offload of " + " and ".join(offload))
    else:
        micro = _degree(recipe, "model.micro_batch_size")
        accum = _degree(recipe, "model.gradient_accumulation_steps")
        total = micro * accum * world
        if strategy == "fsdp":
            notes[-1] = "FSDP full shard" + (
                " + CPU offload" if _get(recipe, "model.fsdp.cpu_offload") else ""
            )
    if method == "grpo":
        generations = _degree(recipe, "method.grpo.num_generations")
        if generations < 2 or total % generations:
            raise UserError(
                f"recipes.method.grpo.num_generations={generations}: must be at least 2 and "
                f"divide the generation batch {total} (micro batch {micro} x accumulation "
                f"{accum} x {world} processes)"
            )
    notes.append(f"global batch {total} = micro {micro} x accumulation {accum} x DP {world}")
    return Layout("open", world, {"DP": world}, tuple(notes))


def _check_open_inputs(recipe: Mapping[str, Any]) -> None:
    """The model to start from and the training data (the catalog leaves both to the user)."""
    model = _get(recipe, "model.hf_model_name_or_path")
    if model is None or not str(model).strip():
        raise UserError(
            f"recipes.model.hf_model_name_or_path={_fmt(model)}: name a Hugging Face model id "
            "or a path (HF_MODEL_NAME_OR_PATH in the launch scripts)"
        )
    if not (_get(recipe, "model.data.train_dir") or _get(recipe, "model.data.train_channel")):
        raise UserError(
            "recipes.model.data.train_dir=null: name a .json/.jsonl/.parquet file or a folder "
            "of them (or recipes.model.data.train_channel on SageMaker)"
        )


def check_hardware(
    recipe: Mapping[str, Any],
    instance_type: str | None,
    instance: InstanceType | None,
    backend: str,
) -> None:
    """QLoRA's 4-bit kernels (bitsandbytes) need CUDA: a GPU instance, or a GPU here."""
    if stack_of(recipe) != "open" or _get(recipe, "model.peft.peft_type") != "qlora":
        return
    if instance is not None and instance.accelerator != "gpu":
        raise UserError(
            f"instance_type={instance_type}: QLoRA (recipes.model.peft.peft_type=qlora) needs "
            "CUDA GPUs; use a GPU instance or recipes.model.peft.peft_type=lora"
        )
    if not instance_type and backends.runs_here(backend) and local_gpus.count() == 0:
        raise UserError(
            "recipes.model.peft.peft_type=qlora: QLoRA needs a CUDA GPU and this machine has "
            "none; use recipes.model.peft.peft_type=lora"
        )


def layout(recipe: Mapping[str, Any], nodes: int, devices: int) -> Layout:
    """The recipe's parallel layout on nodes x devices; raises UserError if it does not fit."""
    stack = stack_of(recipe)
    if stack == "nova":  # AWS's images lay themselves out; the allowed sizes are checked
        nova.check(recipe)
        return Layout(stack, nodes * devices, notes=(f"Nova {nova.method_of(recipe)}",))
    if stack == "adapter":
        return _adapter_layout(recipe, nodes, devices)
    if stack == "neuron":
        return _megatron_layout(recipe, nodes, devices, stack, NEURON_KEYS)
    if stack == "nemo":
        return _megatron_layout(recipe, nodes, devices, stack, NEMO_KEYS)
    return _open_layout(recipe, nodes, devices)


def check_instance(
    recipe: Mapping[str, Any], instance: InstanceType | None, force_fp8: bool = False
) -> None:
    """The rules that need the hardware; nothing to check without an instance type."""
    if instance is not None:
        _check_instance(recipe, instance, force_fp8)


def check(recipe: Mapping[str, Any], *, nodes: int, devices: int) -> Layout:
    """Check a resolved recipe on nodes x devices (processes per node); return its layout."""
    stack = stack_of(recipe)
    result = layout(recipe, nodes, devices)
    if stack == "nova":  # no trainer or data keys of ours: AWS's images read the recipe
        return result
    _check_sequence(recipe, stack)
    _check_finetuning(recipe, stack)
    _check_data(recipe, stack)
    if stack == "open":
        _check_open_inputs(recipe)
    return result
