"""Sections and value lists that several stacks' recipe schemas share (stacks/<name>/schema.py)."""

from __future__ import annotations

from typing import Literal

from hyperpod_launcher.config.rules import Section

# PyTorch Lightning's Trainer(precision=...) values (the adapter and NeMo train under Lightning).
PRECISION = Literal[
    "transformer-engine",
    "transformer-engine-float16",
    "16-true",
    "16-mixed",
    "bf16-true",
    "bf16-mixed",
    "32-true",
    "64-true",
    "64",
    "32",
    "16",
    "bf16",
    64,
    32,
    16,
]
# NeMo's registered optimizers (nemo.core.optim.optimizers), used by NeMo and NxD Training.
NEMO_OPTIMIZER_NAMES = (
    "sgd",
    "adam",
    "adamw",
    "adadelta",
    "adamax",
    "adagrad",
    "rmsprop",
    "rprop",
    "novograd",
    "adafactor",
    "adan",
    "lamb",
    "fused_adam",
    "distributed_fused_adam",
    "megatron_fused_adam",
)
NEMO_OPTIMIZERS = Literal[NEMO_OPTIMIZER_NAMES]  # type: ignore[valid-type]
CHECKPOINT_MODE = Literal["max", "min"]


class RunSection(Section):
    """`run`: the launcher's keys (the training code does not read them)."""

    name: str | None
    results_dir: str | None
    time_limit: str | int | None  # forms: hyperpod_launcher.config.time_limit
    model_type: str | None
    instance_type: str | None  # what the recipe was sized for
    entry_script: str | None
    code_repo: str | None
    code_version: str | None  # the release of code_repo the recipe's keys follow
    code_commit: str | None  # that release's commit: the default checkout pins it
    compile: int | None  # Trainium: 1 runs neuron_parallel_compile first
    dependency: str | None  # a Slurm dependency (HyperPod's NeMo recipes)
