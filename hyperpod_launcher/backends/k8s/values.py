"""Kubernetes: check the cluster options and turn a JobSpec into the chart's values.

Everything here is pure: the values are plain data that the launcher writes to values.yaml
with a YAML serializer; the chart's templates (backends/k8s/charts/pytorchjob/) only place them.
Each bad value is a one-line UserError naming the key, the value and what is allowed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
from pathlib import Path
from typing import Any, TypeVar

from hyperpod_launcher import stacks
from hyperpod_launcher.backends.base import train_script
from hyperpod_launcher.backends.k8s import chart_schema
from hyperpod_launcher.backends.k8s import hyperpod as k8s_hyperpod
from hyperpod_launcher.backends.k8s.options import (
    K8sClaim,
    K8sLabelSelector,
    K8sOptions,
    K8sToleration,
    K8sVolume,
)
from hyperpod_launcher.config.time_limit import time_limit_seconds
from hyperpod_launcher.config.validate import check_section, typed
from hyperpod_launcher.spec import image_ref, job
from hyperpod_launcher.spec.job import JobSpec
from hyperpod_launcher.util import resources
from hyperpod_launcher.util.errors import UserError

T = TypeVar("T")

# Where things live inside every pod; the chart reads these from values.paths.
POD_PATHS = {"scripts": "/hpl/scripts", "job": "/hpl/job", "code": "/hpl/code"}
GIT_TOKEN_KEY = "HPL_GIT_TOKEN"
CHART_SCRIPTS = ("entrypoint.sh", "checkout.sh")
LAUNCHER_SCRIPTS = ("train_script.sh", "pre_script.sh", "post_script.sh")
RESERVED_VOLUMES = {"hpl-scripts", "hpl-job", "hpl-recipe", "hpl-code", "dshm"}
RESERVED_LABELS = {
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/managed-by",
    "helm.sh/chart",
    "hyperpod-launcher/run-name",
    "hyperpod-launcher/launch-id",
    "kueue.x-k8s.io/queue-name",
    "kueue.x-k8s.io/priority-class",
}
RESERVED_ANNOTATIONS = set(k8s_hyperpod.TOPOLOGY_ANNOTATIONS.values())
# helm flags the launcher sets itself, or that would bypass values.yaml.
OWNED_HELM_FLAGS = {
    "-n",
    "--namespace",
    "--kube-context",
    "--generate-name",
    "--name-template",
    "--dry-run",
    "-f",
    "--values",
    "--set",
    "--set-string",
    "--set-file",
    "--set-json",
    "--set-literal",
}
INSTANCE_TYPE_LABEL = "node.kubernetes.io/instance-type"
ACCELERATOR_RESOURCE = {"gpu": "nvidia.com/gpu", "neuron": "aws.amazon.com/neurondevice"}
ACCELERATOR_TAINT = {"gpu": "nvidia.com/gpu", "neuron": "aws.amazon.com/neuron"}
EFA_RESOURCE = "vpc.amazonaws.com/efa"
# ConfigMaps hold at most 1 MiB; leave room for the other scripts.
MAX_SHIPPED_SCRIPT = 512 * 1024

LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
CHART_SCHEMA = "pytorchjob"  # whose definitions check the keys values.yaml does not hold
# Worker pods are <job>-worker-<i>: a DNS-1035 label of at most 63 characters.
MAX_POD_NAME = 63
MAX_RELEASE = 53
SUFFIX_LEN = 6


# --- names -------------------------------------------------------------------------


def options(spec: JobSpec) -> K8sOptions:
    return spec.opts


def job_name(spec: JobSpec) -> tuple[str, str | None]:
    """The PyTorchJob and Helm release name for this launch, and a notice when run.name had
    to be converted. DNS-1035 (lowercase, digits, '-', starts with a letter), with a suffix
    unique to the launch so a relaunch never collides with, or upgrades, a running job."""
    base = re.sub(r"[^a-z0-9-]+", "-", spec.name.lower())
    base = re.sub(r"-{2,}", "-", base).strip("-")
    if not base[:1].isalpha():
        base = f"job-{base}".rstrip("-")
    last_worker = max(spec.nodes - 2, 0)
    limit = min(MAX_RELEASE, MAX_POD_NAME - len(f"-worker-{last_worker}"))
    base = base[: limit - SUFFIX_LEN - 1].rstrip("-")
    suffix = hashlib.sha256(spec.launch_id.encode()).hexdigest()[:SUFFIX_LEN]
    name = f"{base}-{suffix}"
    notice = None
    if base != spec.name:
        notice = (
            f"run.name {spec.name!r} is not a Kubernetes object name (lowercase letters, "
            f"digits and '-', starting with a letter); the job is named {name!r}"
        )
    return name, notice


def label_value(text: str) -> str:
    """`text` cut to a valid label value (run names are letters, digits, '.', '_', '-')."""
    value = re.sub(r"[^A-Za-z0-9._-]", "-", text)[:63]
    return re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", value)


def secret_name(spec: JobSpec, name: str) -> str:
    return options(spec).secret_name or f"{name}-secrets"


# --- checks --------------------------------------------------------------------------


def _check_as(value: Any, key: str, definition: str, what: str) -> None:
    """`value` against one definition of the chart's values.schema.json (for a cluster key
    that values.yaml does not hold, or holds only sometimes)."""
    found = chart_schema.check(value, CHART_SCHEMA, definition)
    if found is not None:
        raise UserError(f"{key}={value!r}: not a valid {what} ({found.rule})")


def _check_label_key(key: str, where: str) -> None:
    prefix, _, name = key.rpartition("/")
    ok = bool(LABEL_NAME.match(name)) and len(name) <= 63
    if prefix:
        ok = ok and chart_schema.check(prefix, CHART_SCHEMA, "dns1123Subdomain") is None
    if not ok:
        raise UserError(
            f"{where}: {key!r} is not a valid label or annotation key ([prefix/]name; name: "
            "at most 63 letters, digits, '-', '_', '.', starting and ending alphanumeric)"
        )


def _label_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _labels(opts: K8sOptions) -> dict[str, str]:
    labels: dict[str, str] = {}
    for key, value in (opts.custom_labels or {}).items():
        where = f"cluster.custom_labels.{key}"
        _check_label_key(str(key), where)
        if key in RESERVED_LABELS:
            raise UserError(f"{where}: the launcher sets this label itself; choose another key")
        labels[str(key)] = _label_text(value)
    return labels


def _annotations(opts: K8sOptions) -> dict[str, str]:
    annotations: dict[str, str] = {}
    for key, value in (opts.annotations or {}).items():
        _check_label_key(str(key), f"cluster.annotations.{key}")
        if key in RESERVED_ANNOTATIONS:
            raise UserError(
                f"cluster.annotations.{key}: set by the launcher from cluster.required_topology "
                "or cluster.preferred_topology; use those"
            )
        annotations[str(key)] = _label_text(value)
    return annotations


def _abs_path(value: str) -> str:
    return os.path.normpath(value) if value.startswith("/") else value


def _items(opts: K8sOptions, key: str, item_schema: type[T], needs: tuple[str, ...]):
    """Each item of a list option, checked, as an instance of `item_schema` (a null item is
    an error)."""
    for index, item in enumerate(getattr(opts, key) or []):
        where = f"cluster.{key}[{index}]"
        if not isinstance(item, dict):
            raise UserError(f"{where}: expected a mapping with {', '.join(needs)}, got {item!r}")
        check_section(item, item_schema, where)
        for field_name in needs:
            if item.get(field_name) in (None, ""):
                raise UserError(f"{where}: {field_name} is required ({', '.join(needs)})")
        yield index, where, typed(item, item_schema)


def _volumes(opts: K8sOptions) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    volumes, claims, names, mounts = [], [], set(RESERVED_VOLUMES), set(POD_PATHS.values())
    mounts.add("/dev/shm")

    def mount_path(value: Any, where: str) -> str:
        path = _abs_path(value)
        if path in mounts:
            raise UserError(f"{where}.mountPath={path!r}: already mounted (used by the job)")
        mounts.add(path)
        return path

    for _, where, item in _items(opts, "volumes", K8sVolume, ("volumeName", "hostPath")):
        name = item.volumeName
        if name in names:
            raise UserError(f"{where}.volumeName={name!r}: used twice or reserved by the job")
        names.add(name)
        host = _abs_path(item.hostPath)
        volumes.append(
            {
                "name": name,
                "hostPath": host,
                "mountPath": mount_path(item.mountPath or host, where),
                "readOnly": item.readOnly,
            }
        )
    claim_items = _items(opts, "persistent_volume_claims", K8sClaim, ("claimName", "mountPath"))
    for index, where, item in claim_items:
        claims.append(
            {
                "name": f"hpl-pvc-{index}",
                "claimName": item.claimName,
                "mountPath": mount_path(item.mountPath, where),
                "readOnly": item.readOnly,
            }
        )
    return volumes, claims


def _tolerations(spec: JobSpec) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = []
    taint = ACCELERATOR_TAINT.get(spec.accelerator)
    if taint:  # accelerator nodes are commonly tainted for their device
        result.append({"key": taint, "operator": "Exists", "effect": "NoSchedule"})
    for _, where, item in _items(options(spec), "tolerations", K8sToleration, ()):
        if item.operator == "Exists" and item.value is not None:
            raise UserError(f"{where}: operator Exists takes no value")
        if not item.key and item.operator != "Exists":
            raise UserError(f"{where}: a toleration without key needs operator Exists")
        if item.tolerationSeconds is not None and item.effect != "NoExecute":
            raise UserError(f"{where}: tolerationSeconds needs effect NoExecute")
        toleration = {k: v for k, v in dataclasses.asdict(item).items() if v is not None}
        if toleration not in result:
            result.append(toleration)
    return result


def _selector_terms(
    section: Any, where: str, weights: list[int] | None = None
) -> list[dict[str, Any]]:
    terms = []
    for index, (key, values) in enumerate(section.items()):
        _check_label_key(str(key), f"{where}.{key}")
        if isinstance(values, str):
            values = [values]
        if not values:
            raise UserError(f"{where}.{key}: give at least one allowed value")
        term: dict[str, Any] = {"key": str(key), "values": [_label_text(v) for v in values]}
        if weights is not None:
            term["weight"] = weights[index]
        terms.append(term)
    return terms


def _node_affinity(spec: JobSpec) -> dict[str, list[dict[str, Any]]]:
    selector = options(spec).label_selector or K8sLabelSelector()
    where = "cluster.label_selector"
    for part in ("required", "preferred"):
        section = getattr(selector, part) or {}
        for key, values in section.items():
            ok = isinstance(values, str) or (
                isinstance(values, list) and all(isinstance(v, (str, int)) for v in values)
            )
            if not ok:
                raise UserError(
                    f"{where}.{part}.{key}: expected a list of label values, got {values!r}"
                )
    preferred = selector.preferred or {}
    weights = list(selector.weights or [])
    if len(weights) != len(preferred):
        raise UserError(
            f"{where}.weights: {len(weights)} weight(s) for {len(preferred)} preferred "
            "label(s); give one weight (1-100) per preferred key, in order"
        )
    required = _selector_terms(selector.required or {}, f"{where}.required")
    if spec.instance_type and not any(t["key"] == INSTANCE_TYPE_LABEL for t in required):
        # EKS labels nodes with the EC2 name, HyperPod with the ml. name: accept both.
        required.append(
            {"key": INSTANCE_TYPE_LABEL, "values": [spec.instance_type, f"ml.{spec.instance_type}"]}
        )
    return {
        "required": required,
        "preferred": _selector_terms(preferred, f"{where}.preferred", weights),
    }


def _quantity(value: Any) -> str | None:
    return None if value is None else str(value)


def _resources(spec: JobSpec) -> dict[str, dict[str, str]]:
    devices: dict[str, str] = {}
    instance = spec.instance
    if instance is not None and spec.accelerator in ACCELERATOR_RESOURCE:
        devices[ACCELERATOR_RESOURCE[spec.accelerator]] = str(instance.devices)
    elif instance is None and spec.accelerator == "gpu":  # instance_type=none, a GPU recipe
        devices[ACCELERATOR_RESOURCE["gpu"]] = str(spec.procs_per_node)
    elif instance is None and spec.accelerator == "neuron":
        # Processes count NeuronCores; how many cores make a device depends on the instance.
        raise UserError(
            "instance_type=none: a Trainium recipe on Kubernetes requests whole Neuron "
            f"devices ({ACCELERATOR_RESOURCE['neuron']}), and how many hold "
            f"{spec.procs_per_node} NeuronCores depends on the instance; set instance_type "
            "(e.g. trn1.32xlarge) instead of none"
        )
    if instance is not None and instance.efa:
        devices[EFA_RESOURCE] = str(instance.efa)
    requests = dict(devices)
    cpu = _quantity(options(spec).cpu_request)
    memory = _quantity(options(spec).memory_request)
    if cpu:
        requests["cpu"] = cpu
    if memory:
        requests["memory"] = memory
    result = {}
    if requests:
        result["requests"] = requests
    if devices:  # extended resources: limits must equal requests
        result["limits"] = dict(devices)
    return result


def restarts(spec: JobSpec) -> tuple[str, int | None]:
    """The replicas' restartPolicy and runPolicy.backoffLimit. The top-level max_restarts
    (one knob on every backend) sets both where the cluster file leaves them null:
    OnFailure, and a backoffLimit of max_restarts (which the operator counts in pod
    restarts: the sum of every running pod's container restarts)."""
    opts = options(spec)
    restart, backoff = opts.restartPolicy, opts.backoffLimit
    wanted = spec.max_restarts
    if wanted:
        if restart == "Never":
            raise UserError(
                f"max_restarts={wanted} contradicts cluster.restartPolicy=Never (failed pods "
                "are never restarted); set cluster.restartPolicy=OnFailure or ExitCode, or null"
            )
        if backoff == 0:
            raise UserError(
                f"max_restarts={wanted} contradicts cluster.backoffLimit=0 (the job fails at "
                f"its first pod restart); set backoffLimit to null (it becomes {wanted}) or more"
            )
        return restart or "OnFailure", wanted if backoff is None else backoff
    restart = restart or "Never"
    if restart == "Never" and backoff is not None and backoff > 0:
        raise UserError(
            f"cluster.backoffLimit={backoff} has no effect with cluster.restartPolicy=Never "
            "(failed pods are not restarted); set restartPolicy=OnFailure or ExitCode"
        )
    return restart, backoff


def _run_policy(spec: JobSpec, backoff: int | None) -> dict[str, Any]:
    opts = options(spec)
    policy: dict[str, Any] = {"cleanPodPolicy": opts.cleanPodPolicy or "Running"}
    if backoff is not None:
        policy["backoffLimit"] = backoff
    ttl = opts.ttlSecondsAfterFinished
    if ttl is not None:
        policy["ttlSecondsAfterFinished"] = ttl
    deadline = time_limit_seconds(spec.time_limit)
    if deadline:
        policy["activeDeadlineSeconds"] = deadline
    return policy


def _helm_args(opts: K8sOptions) -> list[str]:
    args = [str(a) for a in opts.helm_args or []]
    for arg in args:
        flag = arg.split("=", 1)[0]
        if not arg.startswith("-") or flag in OWNED_HELM_FLAGS:
            raise UserError(
                f"cluster.helm_args: {arg!r} is not an extra `helm install` flag the launcher "
                f"allows (flags only; set by the launcher: {', '.join(sorted(OWNED_HELM_FLAGS))})"
            )
    return args


def check_options(spec: JobSpec) -> None:
    """The option checks that need no other part of the spec (the backend's validate step)."""
    opts = options(spec)
    _check_as(opts.namespace, "cluster.namespace", "dns1123Label", "namespace")
    if opts.secret_name is not None:  # in values.yaml only when the job uses the Secret
        _check_as(opts.secret_name, "cluster.secret_name", "dns1123Subdomain", "Secret name")
    context = opts.kube_context
    if context is not None and not str(context).strip():
        raise UserError("cluster.kube_context: empty; give a context name or null")
    if opts.scheduler_name is not None and not str(opts.scheduler_name).strip():
        raise UserError("cluster.scheduler_name: empty; give a scheduler name or null")
    if not k8s_hyperpod.selected(opts):
        k8s_hyperpod.check_not_set(opts)
    if spec.mounts:
        raise UserError(
            "container_mounts: not used on Kubernetes; mount host folders with "
            "cluster.volumes and shared storage with cluster.persistent_volume_claims"
        )
    if not spec.image:
        raise UserError(
            "container is not set: Kubernetes pods need an image; set container=<image>"
        )


# --- code and scripts ----------------------------------------------------------------


def _code(spec: JobSpec) -> dict[str, Any]:
    code = spec.code
    if code.location is None:
        return {"repo": None, "branch": None, "commit": None, "image": None, "gitTokenKey": None}
    if code.is_local:
        raise UserError(
            f"git.repo_url_or_path={code.location!r}: a local path cannot reach Kubernetes pods; "
            "give a git URL (checked out in each pod) or bake the code into the image and set "
            "git.repo_url_or_path=null"
        )
    return {
        "repo": code.location,
        "branch": code.branch,
        "commit": code.commit,
        "image": _checkout_image(spec),
        "gitTokenKey": GIT_TOKEN_KEY,
    }


def _shipped_entry(spec: JobSpec) -> tuple[str, str] | None:
    """An entry script on this host and no code repository (a custom script, or a recipe
    whose entry script ships with the launcher, e.g. DeepSpeed's): the script rides in the
    scripts ConfigMap, as (file name, text). Reading it is the one file read of this render."""
    script = spec.entry.script
    if not script or spec.code.location or not os.path.isabs(script):
        return None
    key = "training_cfg.entry_script" if spec.mode == "custom" else "git.entry_script"
    if spec.mode != "custom" and not os.path.isfile(script):
        return None  # a path inside the container image (e.g. NeMo's), not one on this host
    name = os.path.basename(script)
    if name in (*CHART_SCRIPTS, *LAUNCHER_SCRIPTS) or not re.match(r"^[-._a-zA-Z0-9]+$", name):
        raise UserError(
            f"{key}={script!r}: rename the script; {name!r} cannot be "
            "shipped in the scripts ConfigMap (reserved or unusual name)"
        )
    if os.path.getsize(script) > MAX_SHIPPED_SCRIPT:
        raise UserError(
            f"{key}={script!r}: larger than {MAX_SHIPPED_SCRIPT // 1024} KiB; "
            "put the code in git (git.repo_url_or_path) or in the image"
        )
    try:
        with open(script, encoding="utf-8") as handle:
            return name, handle.read()
    except UnicodeDecodeError as err:
        raise UserError(
            f"{key}={script!r}: not a UTF-8 text file (byte {err.start}); the scripts "
            "ConfigMap holds text: give the script's source, or put binaries in the image"
        ) from None
    except OSError as err:
        raise UserError(f"{key}={script!r}: cannot read it ({err.strerror})") from None


def _example_companions(script: str) -> dict[str, str]:
    """The modules a built-in example imports from its folder, beside it in the ConfigMap."""
    paths = resources.example_companions(script)
    return {os.path.basename(path): Path(path).read_text(encoding="utf-8") for path in paths}


def pod_spec(spec: JobSpec, shipped: tuple[str, str] | None) -> JobSpec:
    """The job as its pods see it: recipe in /hpl/job, code in /hpl/code, scripts beside."""
    pod = job.relocate(spec, POD_PATHS["job"], POD_PATHS["code"] if spec.code.location else None)
    if shipped is not None:
        entry = dataclasses.replace(pod.entry, script=f"{POD_PATHS['scripts']}/{shipped[0]}")
        pod = dataclasses.replace(pod, entry=entry)
    return pod


def _commands(lines: list[Any], key: str, what: str) -> str | None:
    if not lines:
        return None
    body = "\n".join(str(line) for line in lines)
    return f"# cluster.{key}: {what}, sourced by entrypoint.sh\n{body}\n"


def _env(spec: JobSpec) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    plain = [{"name": k, "value": v} for k, v in spec.env]
    secret = [{"name": name, "key": name} for name in spec.secret_env]
    return plain, secret


def check_paths_on_volumes(spec: JobSpec, mounts: list[str]) -> None:
    """Every path the recipe names must be on a volume of the pods: data a pod cannot read
    fails the job, and outputs elsewhere are lost with the pod and unseen by the other nodes'
    ranks (unless cluster.throwaway_outputs says they do not matter)."""
    if not spec.recipe_yaml:
        return
    import yaml

    from hyperpod_launcher.spec.mounts import unreachable

    recipe = yaml.safe_load(spec.recipe_yaml) or {}
    stack = spec.stack
    exp = recipe.get("exp_manager") or {}
    if (
        stack is not None
        and stacks.get(stack).writes_job_folder
        and not exp.get("exp_dir")
        and not options(spec).throwaway_outputs
    ):
        raise UserError(
            f"recipes.exp_manager.exp_dir=null: the {stack} recipe then writes under the job "
            "folder, which the pods do not share and which is lost with them; set it to a "
            "folder of a claim (cluster.persistent_volume_claims), or set "
            "cluster.throwaway_outputs=true if the outputs do not matter"
        )
    for key, path, written in unreachable(recipe, mounts):
        if written and options(spec).throwaway_outputs:
            continue
        what = (
            "its outputs would be lost with the pod and unseen by the other nodes"
            if written
            else "no pod can read it"
        )
        also = "; or set cluster.throwaway_outputs=true if they do not matter" if written else ""
        raise UserError(
            f"recipes.{key}={path}: on no volume of the pods, so {what}; mount its folder "
            f"with cluster.persistent_volume_claims=[{{claimName:<claim>,mountPath:<folder>}}] "
            f"(or cluster.volumes){also}"
        )


def job_files(spec: JobSpec) -> dict[str, str]:
    """The recipe and the files the job reads beside it (no shared filesystem: they ride in
    a ConfigMap and are mounted into the pods' job folder)."""
    files: dict[str, str] = {}
    if spec.recipe_file and spec.recipe_yaml is not None:
        files[spec.recipe_file] = spec.recipe_yaml
    for name, text in spec.config_files:
        files[name] = text
    return files


# values.yaml paths (N: a list index, K: a mapping key) -> the cluster key they come from, and
# what its value is.
_VALUE_KEYS: dict[str, tuple[str, str | None]] = {
    "imagePullPolicy": ("cluster.pullPolicy", None),
    "imagePullSecrets.N": ("cluster.image_pull_secrets[N]", "Secret name"),
    "restartPolicy": ("cluster.restartPolicy", None),
    "runPolicy.cleanPodPolicy": ("cluster.cleanPodPolicy", None),
    "runPolicy.backoffLimit": ("cluster.backoffLimit", None),
    "runPolicy.ttlSecondsAfterFinished": ("cluster.ttlSecondsAfterFinished", None),
    "runPolicy.jobMaxRetryCount": ("cluster.jobMaxRetryCount", None),
    "runPolicy.restartPolicy.K": ("cluster.K", None),
    "runPolicy.logMonitoringConfiguration.N.K": ("cluster.logMonitoringConfiguration[N].K", None),
    **{
        f"elasticPolicy.{field}": (f"cluster.elastic_policy.{key}", None)
        for key, field in k8s_hyperpod.ELASTIC_FIELDS.items()
    },
    "labels.K": ("cluster.custom_labels.K", "label value"),
    "annotations.K": ("cluster.annotations.K", None),
    "queueName": ("cluster.queue_name", "Kueue LocalQueue name"),
    "kueuePriorityClass": ("cluster.priority_class", "Kueue WorkloadPriorityClass name"),
    "serviceAccountName": ("cluster.service_account_name", "service account name"),
    "priorityClassName": ("cluster.priority_class_name", "priority class name"),
    "schedulerName": ("cluster.scheduler_name", None),
    "rdzvPort": ("cluster.rdzv_port", "port number"),
    "resources.requests.cpu": ("cluster.cpu_request", "CPU request"),
    "resources.requests.memory": ("cluster.memory_request", "memory request"),
    "shmSizeLimit": ("cluster.shm_size", "/dev/shm size"),
    "tolerations.N.K": ("cluster.tolerations[N].K", None),
    "nodeAffinity.required.N.values.N": ("cluster.label_selector.required.TERM", "label value"),
    "nodeAffinity.preferred.N.values.N": ("cluster.label_selector.preferred.TERM", "label value"),
    "nodeAffinity.preferred.N.weight": ("cluster.label_selector.weights[N]", "weight"),
    "secretName": ("cluster.secret_name", "Secret name"),
    "volumes.N.name": ("cluster.volumes[N].volumeName", "volume name"),
    "volumes.N.hostPath": ("cluster.volumes[N].hostPath", None),
    "volumes.N.mountPath": ("cluster.volumes[N].mountPath", None),
    "claims.N.claimName": ("cluster.persistent_volume_claims[N].claimName", "claim name"),
    "claims.N.mountPath": ("cluster.persistent_volume_claims[N].mountPath", None),
}
VALUE_KEYS: dict[tuple[str, ...], tuple[str, str | None]] = {
    **{tuple(path.split(".")): key for path, key in _VALUE_KEYS.items()},
    **{
        ("topology", annotation): (f"cluster.{key}", None)
        for key, annotation in k8s_hyperpod.TOPOLOGY_ANNOTATIONS.items()
    },
}


def _user_key(path: chart_schema.Path, values: dict[str, Any]) -> tuple[str, str | None]:
    """The cluster key a values.yaml path comes from (launcher-made values: values.<path>)."""
    shape = tuple("N" if isinstance(p, int) else p for p in path)
    for parts, (key, what) in VALUE_KEYS.items():
        if len(parts) != len(shape) or any(
            a not in (b, "K") for a, b in zip(parts, shape, strict=True)
        ):
            continue
        for part, name in zip(parts, path, strict=True):
            if part == "N":
                key = key.replace("[N]", f"[{name}]", 1)
            elif part == "K":
                key = key.replace(".K", f".{name}", 1)
        if "TERM" in key:
            assert isinstance(path[0], str)  # matched the shape's named first key
            key = key.replace("TERM", values[path[0]][path[1]][path[2]]["key"])
        return key, what
    return "values." + ".".join(str(p) for p in path), None


def _check_values(values: dict[str, Any], chart: str) -> None:
    """values.yaml against the chart's values.schema.json; a violation is one line naming the
    cluster key it comes from."""
    found = chart_schema.check(values, chart)
    if found is None:
        return
    key, what = _user_key(found.path, values)
    if found.value is None:
        raise UserError(f"{key}: {found.rule}")
    if what is None:
        raise UserError(f"{key}={found.value!r}: expected {found.rule}")
    raise UserError(f"{key}={found.value!r}: not a valid {what} ({found.rule})")


@dataclasses.dataclass(frozen=True)
class ChartValues:
    name: str
    chart: str  # the chart folder under backends/k8s/charts/
    kind: str
    values: dict[str, Any]
    helm_args: list[str]
    notices: list[str]


def build(spec: JobSpec) -> ChartValues:
    """values.yaml's content for a validated spec (K8sBackend.validate); what only the
    built values show (sizes, layouts, the chart's schema) raises UserError here."""
    opts = options(spec)
    name, name_notice = job_name(spec)
    volumes, claims = _volumes(opts)
    code = _code(spec)
    shipped = _shipped_entry(spec)
    pod = pod_spec(spec, shipped)
    hyperpod = k8s_hyperpod.selected(opts)
    launcher = "hyperpodrun" if hyperpod else "torchrun"
    scripts = {"train_script.sh": train_script(pod, launcher).text}
    for key, file, what in (
        ("pre_script", "pre_script.sh", "run before training"),
        ("post_script", "post_script.sh", "run after training"),
    ):
        text = _commands(getattr(opts, key) or [], key, what)
        if text is not None:
            scripts[file] = text
    if shipped is not None:
        scripts[shipped[0]] = shipped[1]
        scripts.update(_example_companions(spec.entry.script or ""))
    plain_env, secret_env = _env(spec)
    restart, backoff = restarts(spec) if not hyperpod else (None, None)
    uses_secret = bool(secret_env) or code["repo"] is not None
    queue = opts.queue_name
    values: dict[str, Any] = {
        "job": {
            "name": name,
            "runName": label_value(spec.name),
            "launchId": label_value(spec.launch_id),
        },
        "nodes": spec.nodes,
        "procsPerNode": spec.procs_per_node,
        "image": spec.image,
        "imagePullPolicy": opts.pullPolicy,
        "imagePullSecrets": list(opts.image_pull_secrets or []),
        "restartPolicy": restart,
        "runPolicy": _run_policy(spec, backoff) if not hyperpod else {},
        "labels": _labels(opts),
        "annotations": _annotations(opts),
        "queueName": _label_text(queue) if queue is not None else None,
        "kueuePriorityClass": opts.priority_class,
        "serviceAccountName": opts.service_account_name,
        "priorityClassName": opts.priority_class_name,
        "schedulerName": opts.scheduler_name,
        "hostNetwork": opts.host_network,
        "rdzvPort": opts.rdzv_port,
        "paths": dict(POD_PATHS),
        "resources": _resources(spec),
        "shmSizeLimit": _quantity(opts.shm_size),
        "tolerations": _tolerations(spec),
        "nodeAffinity": _node_affinity(spec),
        "env": plain_env,
        "secretName": secret_name(spec, name) if uses_secret else None,
        "secretEnv": secret_env,
        "code": code,
        "volumes": volumes,
        "claims": claims,
        "scripts": scripts,
        "jobFiles": job_files(spec),
    }
    chart, kind = "pytorchjob", "PyTorchJob"
    if hyperpod:
        values = k8s_hyperpod.values(spec, values, time_limit_seconds(spec.time_limit))
        chart, kind = "hyperpodpytorchjob", k8s_hyperpod.KIND
    notices = [n for n in (name_notice, k8s_hyperpod.priority_notice(opts)) if n]
    check_paths_on_volumes(spec, [v["mountPath"] for v in (*volumes, *claims)])
    _check_values(values, chart)
    return ChartValues(name, chart, kind, values, _helm_args(opts), notices)


def _checkout_image(spec: JobSpec) -> str | None:
    image = options(spec).code_checkout_image
    return image_ref.check(image, "cluster.code_checkout_image") if image else spec.image
