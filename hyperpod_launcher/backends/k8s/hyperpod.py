"""Kubernetes, HyperPodPyTorchJob: the values only this kind has, checked, as plain data.

The HyperPod training operator's job (sagemaker.amazonaws.com/v1) starts `hyperpodrun` in
each pod and restarts processes in place before it restarts the job. Its chart
(backends/k8s/charts/hyperpodpytorchjob/) shares the pod template with the PyTorchJob chart; this
module adds runPolicy, elasticPolicy, Kueue labels, topology annotations and node health.

max_restarts (the one restart knob of every backend) becomes runPolicy.jobMaxRetryCount
when cluster.jobMaxRetryCount is null; runPolicy.restartPolicy (process-level restarts
before a full job restart) is set only from its own cluster keys.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from hyperpod_launcher.backends.k8s.options import K8sLogMonitoringRule, K8sOptions
from hyperpod_launcher.config.validate import check_section, typed
from hyperpod_launcher.spec import recipe_checks
from hyperpod_launcher.spec.job import JobSpec
from hyperpod_launcher.util.errors import UserError

KIND = "HyperPodPyTorchJob"
CONTAINER = "pytorch-job-container"  # the name the hyp CLI gives the training container
REPLICA_SPEC = "pod"  # the hyp CLI's replica group name
AGENT_HOST, AGENT_PORT = "0.0.0.0", 8080  # hyperpodrun's server; the operator calls it here
TOPOLOGY_ANNOTATIONS = {
    "required_topology": "kueue.x-k8s.io/podset-required-topology",
    "preferred_topology": "kueue.x-k8s.io/podset-preferred-topology",
}
HEALTH_LABEL = "sagemaker.amazonaws.com/node-health-status"
DEEP_HEALTH_LABEL = "sagemaker.amazonaws.com/deep-health-check-status"
# Keys of cluster/k8s.yaml that only a HyperPodPyTorchJob reads.
ONLY_HYPERPOD = (
    "jobMaxRetryCount",
    "numRestartBeforeFullJobRestart",
    "evalPeriodSeconds",
    "maxFullJobRestarts",
    "logMonitoringConfiguration",
    "elastic_policy",
    "required_topology",
    "preferred_topology",
    "deep_health_check_passed_nodes_only",
)
PYTORCHJOB_RESTART_KEYS = {
    "restartPolicy": "numRestartBeforeFullJobRestart",
    "backoffLimit": "jobMaxRetryCount",
}
ELASTIC_FIELDS = {
    "graceful_shutdown_timeout": "gracefulShutdownTimeoutInSeconds",
    "scaling_timeout": "scalingTimeoutInSeconds",
    "faulty_timeout": "faultyScaleDownTimeoutInSeconds",
}


def selected(opts: K8sOptions) -> bool:
    return opts.use_hyperpod_pytorch_job


def check_not_set(opts: K8sOptions) -> None:
    """A PyTorchJob launch: the HyperPodPyTorchJob-only keys must keep their defaults."""
    defaults = K8sOptions()
    for key in ONLY_HYPERPOD:
        if getattr(opts, key) != getattr(defaults, key):
            raise UserError(
                f"cluster.{key}: only a HyperPodPyTorchJob reads it; set "
                "cluster.use_hyperpod_pytorch_job=true or drop the key"
            )


def run_policy(spec: JobSpec, deadline: int | None) -> dict[str, Any]:
    opts: K8sOptions = spec.opts
    for key, instead in PYTORCHJOB_RESTART_KEYS.items():
        value = getattr(opts, key)
        if value is not None:
            raise UserError(
                f"cluster.{key}={value}: a PyTorchJob key; a HyperPodPyTorchJob restarts "
                f"through runPolicy: set cluster.{instead} (and see max_restarts)"
            )
    policy: dict[str, Any] = {"cleanPodPolicy": opts.cleanPodPolicy or "All"}
    retries = opts.jobMaxRetryCount
    if spec.max_restarts and retries == 0:
        raise UserError(
            f"max_restarts={spec.max_restarts} contradicts cluster.jobMaxRetryCount=0; set "
            f"jobMaxRetryCount to null (it becomes {spec.max_restarts}) or more"
        )
    if retries is None and spec.max_restarts:
        retries = spec.max_restarts
    if retries is not None:
        policy["jobMaxRetryCount"] = retries
    restart = {}
    for key in ("numRestartBeforeFullJobRestart", "evalPeriodSeconds", "maxFullJobRestarts"):
        value = getattr(opts, key)
        if value is not None:
            restart[key] = value
    if restart:
        if not restart.get("evalPeriodSeconds"):
            raise UserError(
                "cluster.evalPeriodSeconds: needed (a positive number of seconds) with "
                "numRestartBeforeFullJobRestart or maxFullJobRestarts: the window over which "
                "restarts are counted"
            )
        policy["restartPolicy"] = restart
    rules = log_monitoring(opts)
    if rules:
        policy["logMonitoringConfiguration"] = rules
    ttl = opts.ttlSecondsAfterFinished
    if ttl is not None:
        policy["ttlSecondsAfterFinished"] = ttl
    if deadline:
        policy["activeDeadlineSeconds"] = deadline
    return policy


def log_monitoring(opts: K8sOptions) -> list[dict[str, Any]]:
    rules, names = [], set()
    for index, item in enumerate(opts.logMonitoringConfiguration or []):
        where = f"cluster.logMonitoringConfiguration[{index}]"
        if not isinstance(item, dict):
            raise UserError(f"{where}: expected a mapping with name and logPattern, got {item!r}")
        check_section(item, K8sLogMonitoringRule, where)
        checked = typed(item, K8sLogMonitoringRule)
        rule = {k: v for k, v in dataclasses.asdict(checked).items() if v is not None}
        for key, value in (("name", checked.name), ("logPattern", checked.logPattern)):
            if not value:
                raise UserError(f"{where}: {key} is required (name, logPattern)")
        if rule["name"] in names:
            raise UserError(f"{where}.name={rule['name']!r}: used by another rule")
        names.add(rule["name"])
        for key in ("logPattern", "stopPattern"):
            if key in rule:
                try:
                    compiled = re.compile(rule[key])
                except re.error as err:
                    raise UserError(f"{where}.{key}={rule[key]!r}: not a regex ({err})") from None
                if key == "logPattern" and "metricThreshold" in rule and compiled.groups != 1:
                    raise UserError(
                        f"{where}.logPattern={rule[key]!r}: with metricThreshold it needs "
                        "exactly one capture group (the number compared with the threshold)"
                    )
        if ("metricThreshold" in rule) != ("operator" in rule):
            raise UserError(f"{where}: metricThreshold and operator go together (set both)")
        rules.append(rule)
    return rules


def elastic_sizes(opts: K8sOptions, nodes: int) -> tuple[dict[str, Any], list[int]] | None:
    """(elasticPolicy, every allowed node count), or None when the job is not elastic."""
    section = opts.elastic_policy
    if section is None:
        return None
    where = "cluster.elastic_policy"
    low, high = section.min_nodes, section.max_nodes
    if low is None or high is None:
        raise UserError(f"{where}: min_nodes and max_nodes are required for an elastic job")
    if not 1 <= low <= nodes <= high:
        raise UserError(
            f"{where}: min_nodes {low} <= nodes {nodes} <= max_nodes {high} must hold (nodes: "
            "recipes.trainer.num_nodes or training_cfg.run.nodes; min_nodes >= 1)"
        )
    step, values = section.replica_increment_step, section.replica_discrete_values
    policy: dict[str, Any] = {"minReplicas": low, "maxReplicas": high}
    if step is not None and values is not None:
        raise UserError(
            f"{where}: replica_increment_step and replica_discrete_values exclude each other"
        )
    if values is not None:
        sizes = sorted(set(values))
        if not sizes or sizes[0] < low or sizes[-1] > high or len(sizes) != len(values):
            raise UserError(
                f"{where}.replica_discrete_values={values}: give distinct node counts within "
                f"min_nodes {low} .. max_nodes {high}"
            )
        policy["replicaDiscreteValues"] = sizes
    else:
        sizes = list(range(low, high + 1, step or 1))
        if step is not None:
            policy["replicaIncrementStep"] = step
    if nodes not in sizes:
        raise UserError(
            f"{where}: the job starts at {nodes} nodes, which is not an allowed size "
            f"({_sizes_text(sizes)}); start at one of them"
        )
    for key, field in ELASTIC_FIELDS.items():
        value = getattr(section, key)
        if value is not None:
            policy[field] = value
    return policy, sizes


def _sizes_text(sizes: list[int]) -> str:
    return ", ".join(map(str, sizes)) if len(sizes) <= 12 else f"{sizes[0]} .. {sizes[-1]}"


def check_recipe_at_sizes(spec: JobSpec, sizes: list[int]) -> None:
    """The recipe's parallel layout and global batch must fit every elastic size."""
    if spec.recipe_yaml is None:
        return
    import yaml

    recipe = yaml.safe_load(spec.recipe_yaml)
    broken = []
    for size in sizes:
        try:
            recipe_checks.layout(recipe, size, spec.procs_per_node, spec.stack)
        except UserError as err:
            broken.append((size, str(err)))
    if broken:
        size, reason = broken[0]
        which = ", ".join(str(s) for s, _ in broken)
        raise UserError(
            f"cluster.elastic_policy: the recipe does not fit {len(broken)} allowed size(s) "
            f"({which} nodes); at {size} nodes: {reason}"
        )


def topology(opts: K8sOptions) -> dict[str, str]:
    annotations = {}
    for key, annotation in TOPOLOGY_ANNOTATIONS.items():
        level = getattr(opts, key)
        if level is not None:
            annotations[annotation] = level
    if len(annotations) > 1:
        raise UserError("cluster.required_topology and cluster.preferred_topology: set one of them")
    return annotations


def health_terms(opts: K8sOptions, required: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Required node-affinity terms for HyperPod's node health labels (unless the user's
    label_selector.required already names the label)."""
    taken = {term["key"] for term in required}
    terms = []
    if opts.schedulable_nodes_only and HEALTH_LABEL not in taken:
        terms.append({"key": HEALTH_LABEL, "values": ["Schedulable"]})
    if opts.deep_health_check_passed_nodes_only and DEEP_HEALTH_LABEL not in taken:
        terms.append({"key": DEEP_HEALTH_LABEL, "values": ["Passed"]})
    return terms


def priority_notice(opts: K8sOptions) -> str | None:
    pod_class = opts.priority_class_name
    if pod_class and str(pod_class).endswith("-priority") and not opts.priority_class:
        return (
            f"cluster.priority_class_name={pod_class} sets the pods' Kubernetes PriorityClass; "
            "HyperPod task governance reads the Kueue label instead: set "
            f"cluster.priority_class={pod_class} if that is what you meant"
        )
    return None


def values(spec: JobSpec, common: dict[str, Any], deadline: int | None) -> dict[str, Any]:
    """The HyperPodPyTorchJob chart's values: the shared ones plus this kind's."""
    opts: K8sOptions = spec.opts
    if spec.neuron_compile:
        raise UserError(
            "recipes.run.compile=1: the Neuron compile-only pass runs with torchrun; run it "
            "as a PyTorchJob (cluster.use_hyperpod_pytorch_job=false), then launch this job"
        )
    elastic = elastic_sizes(opts, spec.nodes)
    if elastic is not None:
        check_recipe_at_sizes(spec, elastic[1])
    shared = {k: v for k, v in common.items() if k not in ("restartPolicy", "rdzvPort")}
    affinity = dict(shared["nodeAffinity"])
    affinity["required"] = [*affinity["required"], *health_terms(opts, affinity["required"])]
    return {
        **shared,
        "nodeAffinity": affinity,
        "nprocPerNode": str(spec.procs_per_node),
        "replicaSpecName": REPLICA_SPEC,
        "container": CONTAINER,
        "agent": {"host": AGENT_HOST, "port": AGENT_PORT},
        "runPolicy": run_policy(spec, deadline),
        "elasticPolicy": elastic[0] if elastic else None,
        "topology": topology(opts),
    }
