"""Amazon Nova recipes: what each one may ask for, and the services its job runs.

Nova trains in AWS's own images, which read the recipe itself (mounted at /config/config.yaml)
and run no code of ours. SFT, DPO, continued pretraining, evaluation and data distillation are
one training job of `run.replicas` nodes; PPO is five cooperating services: reward, critic and
anchor models and actor training (training jobs of their `*_replicas` nodes each) and actor
generation (a stateful set of inference servers). Each service reads `run` and its own section
as `training_config`, with its task type.

The allowed replica counts and global batch sizes depend on the model and the method; they
are the ones SageMaker HyperPod v1.5.1's Nova recipes state.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hyperpod_launcher.config.rules import Count
from hyperpod_launcher.config.validate import check_value
from hyperpod_launcher.util.dotted import get as _get
from hyperpod_launcher.util.errors import UserError

NAME = "nova"
MODEL_TYPE_PREFIX = "amazon.nova"
INSTANCE_TYPE = "p5.48xlarge"  # the only instance type the Nova images run on
DEFAULT_DEVICES = 8  # a p5.48xlarge's GPUs
# Nova's images live in one region; the init container and PPO's generation servers come from
# AWS's account there.
REGION = "us-east-1"
IMAGE_ACCOUNT = "708977205387"
REGISTRY = f"{IMAGE_ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com"
INIT_IMAGE = f"{REGISTRY}/init-container-repo:latest"
GENERATION_IMAGE = f"{REGISTRY}/nova-fine-tune-repo:SMHP-PPO-TRT-latest"
# PPO services: (name suffix, recipe section, task type the image reads, runs as servers)
PPO_SERVICES = (
    ("rm", "ppo_reward", "ppo_rm", False),
    ("cm", "ppo_critic", "ppo_cm", False),
    ("am", "ppo_anchor", "ppo_anchor", False),
    ("ag", "ppo_actor_generation", "ppo_actor_gen", True),
    ("at", "ppo_actor_train", "ppo_actor_train", False),
)
PPO_REPLICA_KEYS = ("actor_train_replicas", "rm_replicas", "cm_replicas", "am_replicas")
PPO_FOLLOWED = "at"  # the service whose job status, logs and end are the run's

# (model, method) -> {recipe key: allowed values}
_SFT = {"micro": (16, 32, 64), "lite": (16, 32, 64), "pro": (16, 32)}
_DPO = {"micro": (16, 32, 64, 128, 256), "lite": (16, 32, 64, 128, 256), "pro": (16, 32, 64, 128)}
_REPLICAS = {"micro": (2, 4, 8), "lite": (4, 8, 16), "pro": (6, 12, 24)}
_PRETRAIN_REPLICAS = {"micro": (2, 4, 8, 16, 32), "lite": (4, 8, 16, 32), "pro": (6, 12, 24)}
ALLOWED: dict[tuple[str, str], dict[str, tuple[int, ...]]] = {}
for _model in ("micro", "lite", "pro"):
    for _method, _batches in (("sft", _SFT), ("dpo", _DPO)):
        ALLOWED[(_model, _method)] = {
            "run.replicas": _REPLICAS[_model],
            "training_config.global_batch_size": _batches[_model],
        }
    ALLOWED[(_model, "pretrain")] = {
        "run.replicas": _PRETRAIN_REPLICAS[_model],
        "training_config.global_batch_size": (32, 64, 128, 256),
    }
    ALLOWED[(_model, "evaluation")] = {"run.replicas": (1,)}
DPO_MAX_LENGTH = (1024, 32768)  # and a multiple of 1024


def is_nova(recipe: Mapping[str, Any]) -> bool:
    """Nova recipes name an amazon.nova model; the distillation ones name none but carry
    `training_config.distillation_data`."""
    model_type = _get(recipe, "run.model_type")
    if isinstance(model_type, str):
        return model_type.startswith(MODEL_TYPE_PREFIX)
    return model_type is None and _get(recipe, "training_config.distillation_data") is not None


def method_of(recipe: Mapping[str, Any]) -> str:
    if all(recipe.get(section) is not None for _, section, _, _ in PPO_SERVICES):
        return "ppo"
    if recipe.get("evaluation") is not None:
        return "evaluation"
    if _get(recipe, "training_config.distillation_data") is not None:
        return "distillation"
    if _get(recipe, "training_config.model.dpo_cfg") is not None:
        return "dpo"
    if _get(recipe, "training_config.model.peft") is not None:
        return "sft"
    return "pretrain"


def model_of(recipe: Mapping[str, Any]) -> str | None:
    """micro, lite or pro, from `amazon.nova-<model>-v1:...`."""
    model_type = str(_get(recipe, "run.model_type") or "")
    rest = model_type.removeprefix(f"{MODEL_TYPE_PREFIX}-")
    return rest.split("-", 1)[0] if rest != model_type else None


def _names(values: tuple[int, ...]) -> str:
    return ", ".join(str(v) for v in values)


def check(recipe: Mapping[str, Any]) -> None:
    """The values a Nova recipe's model and method allow; one line for the first that is not."""
    method, model = method_of(recipe), model_of(recipe)
    for key, allowed in ALLOWED.get((str(model), method), {}).items():
        value = _get(recipe, key)
        if value not in allowed:
            raise UserError(
                f"recipes.{key}={value}: Nova {model} {method} allows {_names(allowed)}"
            )
    if method == "dpo":
        length = _get(recipe, "training_config.max_length")
        low, high = DPO_MAX_LENGTH
        if isinstance(length, int) and not (low <= length <= high and length % 1024 == 0):
            raise UserError(
                f"recipes.training_config.max_length={length}: Nova DPO needs a multiple of "
                f"1024 from {low} to {high}"
            )
    if method == "ppo":
        for key in ("run.actor_generation_replicas", *(f"run.{k}" for k in PPO_REPLICA_KEYS)):
            check_value(_get(recipe, key), Count, f"recipes.{key}")


@dataclass(frozen=True)
class Service:
    """One part of a Nova job: a training job (a master pod and `workers` more), or, for PPO's
    actor generation, `servers` inference servers."""

    suffix: str  # "" for the single job of non-PPO recipes; else "-rm", "-ag", ...
    nodes: int
    devices: int
    servers: bool
    config: Mapping[str, Any]  # what the image reads as /config/config.yaml (run.name aside)

    @property
    def workers(self) -> int:
        return max(self.nodes - 1, 0)


@dataclass(frozen=True)
class NovaJob:
    method: str
    services: tuple[Service, ...]
    followed: str  # the suffix of the service whose job stands for the whole run

    @property
    def nodes(self) -> int:
        return sum(s.nodes for s in self.services)

    def config(self, service: Service, job_name: str) -> dict[str, Any]:
        """The service's config file, with run.name set to the launch's Kubernetes name (the
        release's; PPO's services add their suffix to it)."""
        config = copy.deepcopy(dict(service.config))
        config["run"] = {**config.get("run", {}), "name": job_name}
        return config


def _devices(value: Any) -> int:
    positive = isinstance(value, int) and not isinstance(value, bool) and value > 0
    return value if positive else DEFAULT_DEVICES


def job(recipe: Mapping[str, Any]) -> NovaJob:
    """The services a resolved Nova recipe runs."""
    method = method_of(recipe)
    if method != "ppo":
        devices = _get(recipe, "resource_config.devices") or _get(
            recipe, "training_config.trainer.devices"
        )
        nodes = _get(recipe, "run.replicas") or 0
        single = Service("", max(int(nodes), 1), _devices(devices), False, dict(recipe))
        return NovaJob(method, (single,), "")
    run = {k: v for k, v in recipe["run"].items() if k not in PPO_REPLICA_KEYS}
    services = []
    for suffix, section, task_type, servers in PPO_SERVICES:
        part = recipe[section]
        config = {"run": run, "training_config": {**part, "task_type": task_type}}
        nodes = _get(part, "trainer.num_nodes") or 0
        devices = _devices(_get(part, "trainer.devices"))
        services.append(Service(f"-{suffix}", int(nodes), devices, servers, config))
    return NovaJob(method, tuple(services), f"-{PPO_FOLLOWED}")
