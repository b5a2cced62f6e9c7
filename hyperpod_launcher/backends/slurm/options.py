"""cluster/slurm.yaml: the Slurm backend's options."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from hyperpod_launcher.config.rules import Count


@dataclass
class SlurmDockerConfig:
    docker_args: list[str] = field(default_factory=list)
    post_launch_commands: list[str] = field(default_factory=list)


@dataclass
class SlurmOptions:
    """cluster/slurm.yaml. Nodes come from trainer.num_nodes, time from run.time_limit."""

    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    exclude: str | None = None
    dependency: str | None = None
    comment: str | None = None
    gres: str | None = None
    gpus_per_node: Count | None = None
    cpus_per_task: Count | None = None
    mem: int | str | None = 0
    exclusive: bool = True
    job_name_prefix: str = "sagemaker-"
    stderr_to_stdout: bool = True
    srun_args: list[str] = field(default_factory=list)
    auto_resume: bool = False  # SageMaker HyperPod's `srun --auto-resume=1`
    container_runtime: Literal["auto", "pyxis", "docker"] = "auto"
    container_mounts: list[str] = field(default_factory=list)
    slurm_docker_cfg: SlurmDockerConfig = field(default_factory=SlurmDockerConfig)
    additional_parameters: dict[str, str | int | float | bool | None] = field(default_factory=dict)
    slurm_create_submission_file_only: bool = False
