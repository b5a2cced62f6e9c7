"""cluster/sm_jobs.yaml: the SageMaker backend's options."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal


@dataclass
class SmTensorboardConfig:
    output_path: str | None = None  # s3:// URI for TensorBoard data
    container_logs_path: str | None = None  # where the job writes it (absolute path)


@dataclass
class SmS3Inputs:
    train: str | None = None
    val: str | None = None


@dataclass
class SmFileSystemInput:
    id: str | None = None
    type: Literal["FSxLustre", "EFS"] | None = None
    directory_path: str | None = None


@dataclass
class SmInputs:
    """Data channels for fit(): S3 prefixes or one file system, never both."""

    s3: SmS3Inputs | None = None
    file_system: SmFileSystemInput | None = None


@dataclass
class SmSecrets:
    """How secret env vars (HF_TOKEN, ...) reach a SageMaker job (values are never written)."""

    secrets_manager: dict[str, str] = field(default_factory=dict)  # NAME -> secret ARN or name
    environment: bool = False  # opt-in: values go into the job Environment (DescribeTrainingJob)


@dataclass
class SmJobsConfig:
    output_path: str | None = None
    tensorboard_config: SmTensorboardConfig = field(default_factory=SmTensorboardConfig)
    wait: bool = False
    inputs: SmInputs = field(default_factory=SmInputs)
    additional_estimator_kwargs: dict[str, Any] = field(default_factory=dict)
    recipe_overrides: dict[str, Any] = field(default_factory=dict)
    role: str | None = None
    region: str | None = None
    secrets: SmSecrets = field(default_factory=SmSecrets)


@dataclass
class SmJobsOptions:
    """cluster/sm_jobs.yaml: a SageMaker training job. Nodes come from trainer.num_nodes."""

    sm_jobs_config: SmJobsConfig = field(default_factory=SmJobsConfig)
