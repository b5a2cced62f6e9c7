"""Kubernetes preflight: what the API server says about the composed job.

Cheap (local): helm on PATH, the kube context in the kubeconfig. Asking the cluster (the
kubernetes client, each call with a timeout): the namespace; the job kind's CRD (or, without
the right to read CRDs, API discovery); SelfSubjectAccessReviews for creating the job,
Secrets and ConfigMaps; the Kueue LocalQueue and the PVCs when named; nodes of the instance
type with enough allocatable accelerators and EFA; `helm install --dry-run=server` on the
chart written to a temporary folder.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from typing import TYPE_CHECKING, Any

from hyperpod_launcher.backends.k8s import values as k8s_values
from hyperpod_launcher.backends.k8s.options import K8sClaim
from hyperpod_launcher.config.validate import typed
from hyperpod_launcher.prepare.preflight import Check, Result, fail, ok, warn

if TYPE_CHECKING:
    from hyperpod_launcher.launch.execute import Plan

TIMEOUT = (5, 15)  # connect, read seconds per API call
HELM_TIMEOUT = 60
KUEUE = "kueue.x-k8s.io/v1beta1"


def _kind(plan: Plan) -> tuple[str, str, str, str]:
    """(group, version, plural, kind) of the job this plan installs."""
    from hyperpod_launcher.backends.k8s.jobs import DEFAULT_KIND, KINDS

    kind = "HyperPodPyTorchJob" if plan.spec.opts.use_hyperpod_pytorch_job else DEFAULT_KIND
    api = KINDS[kind]
    return api.group, api.version, api.plural, kind


class Api:
    """GET/POST on API paths through the kubernetes client, errors as (status, message)."""

    def __init__(self, plan: Plan) -> None:
        from hyperpod_launcher.backends.k8s.jobs import Cluster

        self.cluster = Cluster(plan.spec.opts.kube_context or None)

    def request(self, method: str, path: str, body: Any = None, **query: str) -> tuple[int, Any]:
        """(HTTP status, parsed body); a connection problem raises a one-line BackendError."""
        api = self.cluster.api
        headers = {"Accept": "application/json", "Content-Type": "application/json"}
        args = api.param_serialize(
            method, path, query_params=list(query.items()), header_params=headers,
            body=body, auth_settings=["BearerToken"],
        )  # fmt: skip
        resp = self.cluster.call(api.call_api, *args, _request_timeout=TIMEOUT)
        raw = resp.read() if hasattr(resp, "read") else resp.data
        try:
            answer = json.loads(raw or b"{}")
        except ValueError:
            answer = {"message": raw[:200].decode("utf-8", "replace")}
        if resp.status >= 400:
            return resp.status, f"HTTP {resp.status} {answer.get('message') or ''}".strip()
        return resp.status, answer

    @property
    def where(self) -> str:
        return self.cluster.where


def check_helm() -> Result:
    path = shutil.which("helm")
    if path is None:
        from hyperpod_launcher.backends.k8s.backend import HELM_MISSING

        return fail("helm is not on PATH", HELM_MISSING)
    return ok(f"helm at {path}")


def check_context(plan: Plan) -> Result:
    import yaml

    wanted = plan.spec.opts.kube_context
    paths = os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
    names, current = [], None
    for path in paths.split(os.pathsep):
        try:
            with open(path, encoding="utf-8") as handle:
                config = yaml.safe_load(handle) or {}
        except (OSError, yaml.YAMLError):
            continue
        names += [c.get("name") for c in config.get("contexts") or []]
        current = current or config.get("current-context")
    if not names:  # in a pod, the in-cluster configuration may still work
        return warn(
            f"no kubeconfig with contexts at {paths}",
            "aws eks update-kubeconfig --name <cluster> (or set KUBECONFIG)",
        )
    name = wanted or current
    if name not in names:
        return fail(
            f"kube context {name!r} is not in the kubeconfig (it has: {', '.join(names)})",
            "set cluster.kube_context to one of them",
        )
    return ok(f"kube context {name!r}")


def check_namespace(api: Api, namespace: str) -> Result:
    status, answer = api.request("GET", f"/api/v1/namespaces/{namespace}")
    if status == 200:
        return ok(f"namespace {namespace} exists at {api.where}")
    if status == 404:
        return fail(
            f"namespace {namespace} does not exist", "set cluster.namespace to an existing one"
        )
    return warn(f"cannot read namespace {namespace}: {answer}", "check your RBAC")


def check_crd(api: Api, plan: Plan) -> Result:
    group, version, plural, kind = _kind(plan)
    crd = f"{plural}.{group}"
    status, answer = api.request(
        "GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{crd}"
    )
    if status == 200:
        return ok(f"CRD {crd} is installed")
    if status == 404:
        return fail(f"CRD {crd} is not installed: no {kind} can be created", _operator_fix(kind))
    # Team users often may not read CRDs: API discovery tells whether the resource is served.
    status, answer = api.request("GET", f"/apis/{group}/{version}")
    resources = (
        [r.get("name") for r in (answer or {}).get("resources", [])] if status == 200 else []
    )
    if plural in resources:
        return ok(f"{plural} are served by {group}/{version} (API discovery)")
    return fail(f"{group}/{version} does not serve {plural}", _operator_fix(kind))


def _operator_fix(kind: str) -> str:
    if kind == "HyperPodPyTorchJob":
        return "install the EKS add-on amazon-sagemaker-hyperpod-training-operator"
    return "install the Kubeflow training operator (or set cluster.use_hyperpod_pytorch_job)"


def check_access(api: Api, plan: Plan) -> Result:
    namespace = plan.spec.opts.namespace
    group, _, plural, _ = _kind(plan)
    denied = []
    wanted = [(group, plural), ("", "configmaps")]
    if plan.spec.secret_env or plan.spec.code.location:
        wanted.append(("", "secrets"))
    for api_group, resource in wanted:
        review = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {
                "resourceAttributes": {
                    "group": api_group, "resource": resource, "verb": "create",
                    "namespace": namespace,
                }
            },
        }  # fmt: skip
        status, answer = api.request(
            "POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", review
        )
        if status not in (200, 201):
            return warn(f"cannot ask SelfSubjectAccessReview: {answer}")
        if not (answer.get("status") or {}).get("allowed"):
            denied.append(f"{resource}.{api_group}" if api_group else resource)
    if denied:
        return fail(
            f"you may not create {', '.join(denied)} in namespace {namespace}",
            "ask for a Role allowing create on them (kubectl auth can-i create ... -n "
            f"{namespace})",
        )
    names = ", ".join(f"{r}" for _, r in wanted)
    return ok(f"you may create {names} in namespace {namespace}")


def check_queue(api: Api, plan: Plan) -> Result:
    queue, namespace = plan.spec.opts.queue_name, plan.spec.opts.namespace
    if not queue:
        return ok("no Kueue queue named")
    status, answer = api.request("GET", f"/apis/{KUEUE}/namespaces/{namespace}/localqueues/{queue}")
    if status == 200:
        cluster_queue = (answer.get("spec") or {}).get("clusterQueue")
        return ok(f"LocalQueue {namespace}/{queue} exists (ClusterQueue {cluster_queue})")
    if status == 404:
        return fail(
            f"LocalQueue {namespace}/{queue} does not exist: Kueue would keep the job suspended",
            f"set cluster.queue_name to a queue of {namespace} (kubectl get localqueues -n "
            f"{namespace})",
        )
    return warn(f"cannot read LocalQueue {namespace}/{queue}: {answer}")


def check_claims(api: Api, plan: Plan) -> Result:
    namespace = plan.spec.opts.namespace
    items = plan.spec.opts.persistent_volume_claims or []
    named = [typed(item, K8sClaim).claimName for item in items]
    claims = [claim for claim in named if claim is not None]  # values.py requires a name
    if not claims:
        return ok("no PersistentVolumeClaim named")
    missing = []
    for claim in claims:
        path = f"/api/v1/namespaces/{namespace}/persistentvolumeclaims/{claim}"
        status, answer = api.request("GET", path)
        if status == 404:
            missing.append(claim)
        elif status != 200:
            return warn(f"cannot read PersistentVolumeClaim {claim}: {answer}")
    if missing:
        return fail(
            f"PersistentVolumeClaim {', '.join(missing)} does not exist in {namespace}",
            "create it, or fix cluster.persistent_volume_claims",
        )
    return ok(f"PersistentVolumeClaim {', '.join(claims)} exists")


def check_nodes(api: Api, plan: Plan) -> Result:
    spec = plan.spec
    instance = spec.instance
    if instance is None:
        return ok("no instance type: no node capacity to check")
    names = f"{instance.name},ml.{instance.name}"
    status, answer = api.request(
        "GET", "/api/v1/nodes", labelSelector=f"{k8s_values.INSTANCE_TYPE_LABEL} in ({names})"
    )
    if status != 200:
        return warn(f"cannot list nodes: {answer}", "ask for get/list on nodes, or check by hand")
    wanted = {}
    if spec.accelerator in k8s_values.ACCELERATOR_RESOURCE:
        wanted[k8s_values.ACCELERATOR_RESOURCE[spec.accelerator]] = instance.devices
    if instance.efa:
        wanted[k8s_values.EFA_RESOURCE] = instance.efa
    nodes = answer.get("items") or []
    fit = [
        n for n in nodes
        if all(int((n.get("status") or {}).get("allocatable", {}).get(k, 0)) >= v
               for k, v in wanted.items())
    ]  # fmt: skip
    need = ", ".join(f"{v} {k}" for k, v in wanted.items()) or "no devices"
    if len(fit) < spec.nodes:
        return fail(
            f"{len(fit)} of {len(nodes)} {instance.name} node(s) have {need} allocatable; the "
            f"job needs {spec.nodes}",
            "add nodes of that type, lower the node count, or fix instance_type",
        )
    return ok(
        f"{len(fit)} {instance.name} node(s) with {need} allocatable (the job needs {spec.nodes})"
    )


def check_helm_dry_run(plan: Plan) -> Result:
    helm = shutil.which("helm")
    if helm is None:
        return fail("helm is not on PATH", "install helm")
    argv = list(plan.request.submit_argv)
    chart_dir = argv[3]
    with tempfile.TemporaryDirectory(prefix="hpl-preflight-") as folder:
        for relpath, file in plan.request.files.items():
            if not relpath.startswith(k8s_values_chart_prefix()):
                continue
            path = os.path.join(folder, relpath)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(file.text)
        argv[3] = os.path.join(folder, os.path.relpath(chart_dir, plan.spec.launch_dir))
        try:
            proc = subprocess.run(
                [helm, *argv[1:], "--dry-run=server"], capture_output=True, text=True,
                timeout=HELM_TIMEOUT, check=False, stdin=subprocess.DEVNULL,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            return fail(f"helm install --dry-run=server gave no answer within {HELM_TIMEOUT} s")
    if proc.returncode != 0:
        said = (proc.stderr.strip() or proc.stdout.strip() or "(no output)").splitlines()[-1]
        return fail(f"helm install --dry-run=server failed: {said}", "see helm's message")
    return ok("helm install --dry-run=server accepts the chart")


def k8s_values_chart_prefix() -> str:
    from hyperpod_launcher.backends.k8s.backend import CHART_DIR

    return CHART_DIR + "/"


def checks(plan: Plan) -> list[Check]:
    namespace = plan.spec.opts.namespace
    state: dict[str, Api] = {}

    def api() -> Api:
        if "api" not in state:
            state["api"] = Api(plan)
        return state["api"]

    return [
        Check("k8s helm", check_helm),
        Check("k8s context", lambda: check_context(plan), cheap=True),
        Check("k8s namespace", lambda: check_namespace(api(), namespace)),
        Check("k8s CRD", lambda: check_crd(api(), plan)),
        Check("k8s access", lambda: check_access(api(), plan)),
        Check("k8s Kueue queue", lambda: check_queue(api(), plan)),
        Check("k8s volumes", lambda: check_claims(api(), plan)),
        Check("k8s nodes", lambda: check_nodes(api(), plan)),
        Check("k8s helm dry-run", lambda: check_helm_dry_run(plan), timeout=HELM_TIMEOUT + 5),
    ]
