"""Schemas of config.yaml and the cluster files: the one source of truth for valid keys.

Each dataclass lists the keys a section accepts, with their types. `validate.check_section`
walks a composed config against them, so an unknown or misspelt key is an error naming the
nearest valid keys, and a wrongly typed value is an error naming the type.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

BACKENDS = ("slurm", "k8s", "sm_jobs", "local")


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
    name: str = "custom-script"
    nodes: int = 1
    ntasks_per_node: int | None = None
    time_limit: str | None = None


@dataclass
class TrainingCfg:
    """Custom-script mode: run the user's own script instead of a recipe."""

    entry_script: str | None = None
    script_args: list[Any] = field(default_factory=list)
    run: CustomRun = field(default_factory=CustomRun)


@dataclass
class LauncherConfig:
    """Top level of recipes_collection/config.yaml (recipes and cluster are checked apart)."""

    cluster_type: Literal["slurm", "k8s", "sm_jobs", "local"] | None = None
    instance_type: str | None = None
    base_results_dir: str | None = None
    container: str | None = None
    container_mounts: list[str] = field(default_factory=list)
    git: GitConfig = field(default_factory=GitConfig)
    env_vars: dict[str, str | int | float | bool] = field(default_factory=dict)
    dry_run: bool = False
    force_fp8: bool = False  # launch fp8 recipes off the p5 family anyway
    wait: bool | None = None
    max_restarts: int = 0
    training_cfg: TrainingCfg | None = None
    cluster: Any = None
    recipes: Any = None


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
    gpus_per_node: int | None = None
    cpus_per_task: int | None = None
    mem: int | str | None = 0
    exclusive: bool = True
    job_name_prefix: str = "sagemaker-"
    stderr_to_stdout: bool = True
    srun_args: list[str] = field(default_factory=list)
    container_runtime: Literal["auto", "pyxis", "docker"] = "auto"
    container_mounts: list[str] = field(default_factory=list)
    slurm_docker_cfg: SlurmDockerConfig = field(default_factory=SlurmDockerConfig)
    additional_parameters: dict[str, str | int | float | bool | None] = field(default_factory=dict)
    slurm_create_submission_file_only: bool = False


@dataclass
class LocalOptions:
    """cluster/local.yaml: run the job on this machine."""

    detach: bool = False


@dataclass
class K8sLabelSelector:
    """Node affinity: label key -> allowed values; `weights` pair with `preferred` in order."""

    required: dict[str, Any] = field(default_factory=dict)
    preferred: dict[str, Any] = field(default_factory=dict)
    weights: list[int] = field(default_factory=list)


@dataclass
class K8sVolume:
    volumeName: str | None = None
    hostPath: str | None = None
    mountPath: str | None = None
    readOnly: bool = False


@dataclass
class K8sClaim:
    claimName: str | None = None
    mountPath: str | None = None
    readOnly: bool = False


@dataclass
class K8sToleration:
    key: str | None = None
    operator: Literal["Exists", "Equal"] = "Equal"
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    tolerationSeconds: int | None = None


@dataclass
class K8sOptions:
    """cluster/k8s.yaml: a Kubeflow PyTorchJob in a Helm chart. Nodes come from
    trainer.num_nodes; run.time_limit becomes the job's activeDeadlineSeconds.
    List items (volumes, claims, tolerations) are checked by the k8s backend."""

    namespace: str = "default"
    kube_context: str | None = None
    pullPolicy: Literal["Always", "IfNotPresent", "Never"] = "Always"
    restartPolicy: Literal["Never", "OnFailure", "Always", "ExitCode"] = "Never"
    cleanPodPolicy: Literal["All", "Running", "None"] = "Running"
    backoffLimit: int | None = None
    ttlSecondsAfterFinished: int | None = None
    custom_labels: dict[str, str | int | float | bool] = field(default_factory=dict)
    annotations: dict[str, str | int | float | bool] = field(default_factory=dict)
    service_account_name: str | None = None
    priority_class_name: str | None = None
    queue_name: str | None = None
    image_pull_secrets: list[str] = field(default_factory=list)
    scheduler_name: str | None = None
    host_network: bool = False
    tolerations: list[Any] = field(default_factory=list)
    volumes: list[Any] = field(default_factory=list)
    persistent_volume_claims: list[Any] = field(default_factory=list)
    label_selector: K8sLabelSelector | None = field(default_factory=K8sLabelSelector)
    cpu_request: str | int | float | None = None
    memory_request: str | None = None
    shm_size: str | None = None
    rdzv_port: int = 23456
    code_checkout_image: str | None = None
    secret_name: str | None = None
    create_secret: bool = True
    pre_script: list[str] = field(default_factory=list)
    post_script: list[str] = field(default_factory=list)
    helm_args: list[str] = field(default_factory=list)
    use_hyperpod_pytorch_job: bool = False


CLUSTER_SCHEMAS: dict[str, type] = {
    "slurm": SlurmOptions,
    "local": LocalOptions,
    "k8s": K8sOptions,
}

# Keys users reach for in a cluster file that live elsewhere in this launcher.
MOVED_KEYS = {
    "nodes": "recipes.trainer.num_nodes (or training_cfg.run.nodes)",
    "time": "recipes.run.time_limit (or training_cfg.run.time_limit)",
    "cluster_type": "cluster=<name> (it selects the backend)",
    "instance_type": "the top-level instance_type",
}


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


CLUSTER_SCHEMAS["sm_jobs"] = SmJobsOptions
