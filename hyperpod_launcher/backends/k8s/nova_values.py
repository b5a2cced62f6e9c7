"""Kubernetes: the values of the novajob chart, for an Amazon Nova recipe (spec.nova).

SageMaker HyperPod runs Nova on restricted instance groups of p5.48xlarge nodes: every pod
tolerates the restricted-node taint and requires those nodes, asks for 32 EFA devices, mounts
the node's FSx paths and gets the AWS init container; AWS's image reads the service's recipe
from /config/config.yaml. Nova takes these cluster options: namespace, kube_context,
annotations, custom_labels, label_selector, service_account_name, priority_class_name,
pullPolicy, restartPolicy (default OnFailure), cleanPodPolicy and helm_args.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from hyperpod_launcher.backends.k8s import values as k8s_values
from hyperpod_launcher.backends.k8s.options import K8sLabelSelector
from hyperpod_launcher.spec.job import JobSpec
from hyperpod_launcher.stacks import nova
from hyperpod_launcher.util import yaml_text
from hyperpod_launcher.util.errors import UserError

CHART = "novajob"
KIND = "PyTorchJob"
EFA_DEVICES = 32
# Labels every Nova node must carry (they override the user's required labels of that key).
REQUIRED_NODES = {
    "node.kubernetes.io/instance-type": ["ml.p5.48xlarge"],
    "sagemaker.amazonaws.com/instance-group-type": ["Restricted"],
}
# Options a Nova job cannot honour: AWS's pods mount the node's own paths.
REFUSED = {
    "volumes": "Nova pods mount the node's FSx paths; they take no volumes",
    "persistent_volume_claims": "Nova pods mount the node's FSx paths; they take no claims",
    "use_hyperpod_pytorch_job": "Nova services are PyTorchJobs",
}


def check_refused(spec: JobSpec) -> None:
    """The cluster keys a Nova job cannot take (part of the backend's validate step)."""
    for key, why in REFUSED.items():
        if getattr(spec.opts, key):
            raise UserError(f"cluster.{key}: not for Nova recipes ({why}); remove it")


def _affinity(spec: JobSpec) -> dict[str, list[dict[str, Any]]]:
    """The user's label_selector with the Nova node labels forced into `required`."""
    selector = spec.opts.label_selector or K8sLabelSelector()
    required = {**(selector.required or {}), **REQUIRED_NODES}
    only_user = dataclasses.replace(spec, instance_type=None)  # no instance-type term added
    affinity = k8s_values._node_affinity(
        dataclasses.replace(
            only_user,
            opts=dataclasses.replace(
                spec.opts, label_selector=dataclasses.replace(selector, required=required)
            ),
        )
    )
    # All required terms must hold, so their order is free: by key, as HyperPod renders them.
    affinity["required"].sort(key=lambda term: term["key"])
    return affinity


def _names(spec: JobSpec, job: nova.NovaJob) -> tuple[str, str | None]:
    name, notice = k8s_values.job_name(spec)
    for service in job.services:
        pod = f"{name}{service.suffix}-worker-{max(service.workers - 1, 0)}"
        if len(pod) > k8s_values.MAX_POD_NAME:
            raise UserError(
                f"recipes.run.name={spec.name!r}: too long for the pod names of the Nova "
                f"services ({pod!r} is over {k8s_values.MAX_POD_NAME} characters); shorten it"
            )
    return name, notice


def _job(spec: JobSpec, job: nova.NovaJob, service: nova.Service, name: str) -> dict[str, Any]:
    full = f"{name}{service.suffix}"
    env = [{"name": k, "value": v} for k, v in spec.env]
    if service.suffix:  # PPO: each service finds the others through its name and namespace
        env = [
            {"name": "SVC_NAME", "value": full},
            {"name": "NAMESPACE", "value": spec.opts.namespace},
            *env,
        ]
    return {
        "name": full,
        "masterReplicas": service.nodes if service.servers else 1,
        "workerReplicas": service.workers,
        "devices": service.devices,
        "servers": service.servers,
        "nodeTmp": not service.suffix,  # single jobs keep /tmp on the node's NVMe
        "env": env,
        "config": yaml_text.dump(job.config(service, name)),
    }


def build(spec: JobSpec) -> k8s_values.ChartValues:
    """The novajob chart's values for a validated spec (K8sBackend.validate)."""
    job: nova.NovaJob = spec.nova
    opts = spec.opts
    name, notice = _names(spec, job)
    values: dict[str, Any] = {
        "namespace": opts.namespace,
        "image": spec.image,
        "generationImage": nova.GENERATION_IMAGE if job.method == "ppo" else None,
        "initImage": nova.INIT_IMAGE,
        "pullPolicy": opts.pullPolicy,
        "restartPolicy": opts.restartPolicy or "OnFailure",
        "cleanPodPolicy": opts.cleanPodPolicy,
        "efaDevices": EFA_DEVICES,
        "annotations": k8s_values._annotations(opts),
        "labels": k8s_values._labels(opts),
        "priorityClassName": opts.priority_class_name,
        "serviceAccountName": opts.service_account_name,
        "nodeAffinity": _affinity(spec),
        "jobs": [_job(spec, job, service, name) for service in job.services],
    }
    k8s_values._check_values(values, CHART)
    notices = [notice] if notice else []
    return k8s_values.ChartValues(name, CHART, KIND, values, k8s_values._helm_args(opts), notices)


def followed_job(spec: JobSpec, release: str) -> str:
    """The PyTorchJob whose state, pods and logs stand for the launch."""
    return f"{release}{spec.nova.followed}"
