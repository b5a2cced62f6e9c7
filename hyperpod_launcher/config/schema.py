"""Schemas of config.yaml and custom-script mode: the one source of truth for their keys.

Each dataclass lists the keys a section accepts, with their types. `validate.check_section`
walks a composed config against them, so an unknown or misspelt key is an error naming the
nearest valid keys, and a wrongly typed value is an error naming the type.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hyperpod_launcher.config.rules import Count, NonNegativeInt

DEFAULT_CLUSTER = "slurm"  # config.yaml's default, as in SageMaker HyperPod recipes


@dataclass
class GitConfig:
    repo_url_or_path: str | None = None
    branch: str | None = None
    commit: str | None = None
    entry_script: str | None = None
    entry_module: str | None = None
    token: str | None = None


@dataclass
class CustomRun:
    name: str | None = None  # None: from the entry script's file name
    nodes: Count = 1
    ntasks_per_node: Count | None = None
    time_limit: str | int | None = None  # checked by hyperpod_launcher.config.time_limit


@dataclass
class TrainingCfg:
    """Custom-script mode: run the user's own script instead of a recipe."""

    entry_script: str | None = None
    script_args: list[Any] = field(default_factory=list)
    run: CustomRun = field(default_factory=CustomRun)


@dataclass
class WatchConfig:
    """The per-node watcher's hang watchdog and EFA tripwire (set as HPL_* variables)."""

    hang_timeout: float | None = None  # seconds without a step line; 0: no watchdog
    hang_floor: float | None = None  # the shortest window when derived from the step times
    hang_factor: float | None = None  # the window as a multiple of the median step interval
    require_efa: bool = False  # end the attempt when NCCL falls back to TCP sockets


@dataclass
class LauncherConfig:
    """Top level of recipes_collection/config.yaml (recipes and cluster are checked apart)."""

    cluster_type: str | None = None  # a registered backend, the one cluster= selects
    instance_type: str | None = None
    instance_devices: str | None = None  # a type the catalog lacks: "gpu:8", "neuron:16:2"
    cpu_processes: Count | None = None  # processes per node where the job has no accelerator
    base_results_dir: str | None = None
    container: str | None = None
    # HyperPod's custom-script configs write `[null]` for "none": a null entry mounts nothing.
    container_mounts: list[str | None] = field(default_factory=list)
    git: GitConfig = field(default_factory=GitConfig)
    env_vars: dict[str, str | int | float | bool] = field(default_factory=dict)
    watch: WatchConfig = field(default_factory=WatchConfig)
    dry_run: bool = False
    force_fp8: bool = False  # launch fp8 recipes off the p5 family anyway
    wait: bool | None = None
    allow_concurrent: bool = False  # launch while an earlier launch of the name is active
    preflight: bool | None = None  # None: the cheap checks only
    max_restarts: NonNegativeInt = 0
    training_cfg: TrainingCfg | None = None
    cluster: Any = None
    recipes: Any = None


MOVED_KEYS = {
    "nodes": "recipes.trainer.num_nodes (or training_cfg.run.nodes)",
    "time": "recipes.run.time_limit (or training_cfg.run.time_limit)",
    "cluster_type": "cluster=<name> (it selects the backend)",
    "instance_type": "the top-level instance_type",
}
