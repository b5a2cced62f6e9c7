"""cluster/k8s.yaml: the Kubernetes backend's options."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from hyperpod_launcher.config.rules import Count


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
class K8sElasticPolicy:
    """HyperPodPyTorchJob elasticPolicy, in the HyperPod recipes' names (node counts)."""

    min_nodes: Count | None = None
    max_nodes: Count | None = None
    replica_increment_step: Count | None = None
    replica_discrete_values: list[int] | None = None
    graceful_shutdown_timeout: int | None = None
    scaling_timeout: int | None = None
    faulty_timeout: int | None = None


@dataclass
class K8sLogMonitoringRule:
    """One HyperPodPyTorchJob runPolicy.logMonitoringConfiguration rule (the CR's names)."""

    name: str | None = None
    logPattern: str | None = None
    expectedStartCutOffInSeconds: int | None = None
    expectedRecurringFrequencyInSeconds: int | None = None
    metricThreshold: float | None = None
    operator: Literal["gt", "gteq", "lt", "lteq", "eq"] | None = None
    metricEvaluationDataPoints: int | None = None
    stopPattern: str | None = None
    faultOnMatch: bool | None = None


@dataclass
class K8sOptions:
    """cluster/k8s.yaml: a Kubeflow PyTorchJob in a Helm chart. Nodes come from
    trainer.num_nodes; run.time_limit becomes the job's activeDeadlineSeconds.
    List items (volumes, claims, tolerations) are checked by the k8s backend."""

    namespace: str = "default"
    kube_context: str | None = None
    pullPolicy: Literal["Always", "IfNotPresent", "Never"] = "Always"
    # None: Never, or OnFailure when the top-level max_restarts > 0
    restartPolicy: Literal["Never", "OnFailure", "Always", "ExitCode"] | None = None
    # None: Running (PyTorchJob) or All (HyperPodPyTorchJob)
    cleanPodPolicy: Literal["All", "Running", "OnlyComplete", "None"] | None = None
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
    throwaway_outputs: bool = False  # allow recipe outputs on no volume (lost with the pod)
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
    # Kueue (both kinds); HyperPodPyTorchJob only below.
    priority_class: str | None = None
    jobMaxRetryCount: int | None = None
    numRestartBeforeFullJobRestart: int | None = None
    evalPeriodSeconds: Count | None = None
    maxFullJobRestarts: int | None = None
    logMonitoringConfiguration: list[Any] = field(default_factory=list)
    elastic_policy: K8sElasticPolicy | None = None
    required_topology: str | None = None
    preferred_topology: str | None = None
    schedulable_nodes_only: bool = True
    deep_health_check_passed_nodes_only: bool = False
