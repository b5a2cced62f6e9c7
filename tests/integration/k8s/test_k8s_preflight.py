"""`hyperpod-launch preflight` on Kubernetes, against a recording API stand-in on 127.0.0.1.

The stand-in answers the real API paths the checks use (namespace, CRD, API discovery,
SelfSubjectAccessReview, Kueue LocalQueue, PVC, nodes by label selector) the way the API
server does, and records every request; `helm` is the recording stand-in on PATH.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import k8s_standins
import pytest

from tests.conftest import REPO, require

NAMESPACE = "hyperpod-ns-team-a"
QUEUE = "hyperpod-ns-team-a-localqueue"
HYPERPOD_CRD = "hyperpodpytorchjobs.sagemaker.amazonaws.com"


@dataclass
class Cluster:
    url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    namespaces: set[str] = field(default_factory=lambda: {NAMESPACE})
    crds: set[str] = field(default_factory=lambda: {HYPERPOD_CRD})
    crd_readable: bool = True
    denied: set[str] = field(default_factory=set)  # resources the user may not create
    queues: set[str] = field(default_factory=lambda: {QUEUE})
    claims: set[str] = field(default_factory=lambda: {"fsx-claim"})
    gpu_nodes: int = 2

    def paths(self) -> list[str]:
        return [f"{r['method']} {r['path']}" for r in self.requests]


def _status(code: int, message: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code,
            "message": message, "details": {}}  # fmt: skip


def _handler(state: Cluster) -> type:
    class Handler(k8s_standins.JsonHandler):
        def _record(self) -> tuple[str, dict[str, list[str]], Any]:
            url = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            state.requests.append(
                {"method": self.command, "path": url.path, "query": parse_qs(url.query),
                 "body": body, "authorization": self.headers.get("Authorization")}
            )  # fmt: skip
            return url.path, parse_qs(url.query), body

        def do_GET(self) -> None:
            path, _, _ = self._record()
            parts = path.strip("/").split("/")
            if parts[:3] == ["api", "v1", "namespaces"] and len(parts) == 4:
                if parts[3] in state.namespaces:
                    return self._reply(200, {"kind": "Namespace", "metadata": {"name": parts[3]}})
                return self._reply(404, _status(404, f'namespaces "{parts[3]}" not found'))
            if path.startswith("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/"):
                if not state.crd_readable:
                    return self._reply(403, _status(403, "forbidden: cannot get CRDs"))
                if parts[-1] in state.crds:
                    return self._reply(200, {"kind": "CustomResourceDefinition"})
                return self._reply(404, _status(404, "not found"))
            if path == "/apis/sagemaker.amazonaws.com/v1":
                served = [{"name": "hyperpodpytorchjobs"}] if HYPERPOD_CRD in state.crds else []
                return self._reply(200, {"kind": "APIResourceList", "resources": served})
            if "/localqueues/" in path:
                if parts[-1] in state.queues:
                    return self._reply(200, {"kind": "LocalQueue",
                                             "spec": {"clusterQueue": "team-a-cq"}})  # fmt: skip
                return self._reply(404, _status(404, "localqueues not found"))
            if "/persistentvolumeclaims/" in path:
                if parts[-1] in state.claims:
                    return self._reply(200, {"kind": "PersistentVolumeClaim"})
                return self._reply(404, _status(404, "persistentvolumeclaims not found"))
            if path == "/api/v1/nodes":
                node = {"status": {"allocatable": {"nvidia.com/gpu": "8",
                                                   "vpc.amazonaws.com/efa": "32"}}}  # fmt: skip
                return self._reply(200, {"kind": "NodeList", "items": [node] * state.gpu_nodes})
            return self._reply(404, _status(404, "the server could not find the resource"))

        def do_POST(self) -> None:
            path, _, body = self._record()
            if path == "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews":
                resource = body["spec"]["resourceAttributes"]["resource"]
                allowed = resource not in state.denied
                return self._reply(201, {**body, "status": {"allowed": allowed}})
            return self._reply(404, _status(404, "not found"))

    return Handler


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    require(importlib.util.find_spec("kubernetes") is not None, "the kubernetes Python client")
    state = Cluster()
    with k8s_standins.serve(_handler(state)) as httpd:
        state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
        yield state


def preflight(tmp_path: Path, cluster: Cluster, *overrides: str, helm_exit: int = 0):
    helm = (
        k8s_standins.fake_helm(tmp_path)
        if not (tmp_path / "fake-bin").exists()
        else (k8s_standins.FakeHelm(tmp_path / "fake-bin", tmp_path / "helm-calls.jsonl"))
    )
    config = k8s_standins.kubeconfig(tmp_path / "kubeconfig", {"hp": cluster.url}, current="hp")
    env = {
        **os.environ,
        **helm.env(exit_code=helm_exit, stderr="Error: INSTALLATION FAILED: quota\n"),
        "KUBECONFIG": str(config),
        "HPL_STATE_DIR": str(tmp_path / "state"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "hyperpod_launcher", "preflight",
         "recipes=training/llama/hf_llama3_8b_seq8k_gpu_p5x16_pretrain",
         "recipes.trainer.num_nodes=2", "recipes.model.shard_degree=8", "cluster=k8s",
         "recipes.model.data.train_dir=/fsx/data/train", "recipes.exp_manager.exp_dir=/fsx/exp",
         "+cluster.persistent_volume_claims=[{claimName:fsx-claim,mountPath:/fsx}]",
         "cluster.use_hyperpod_pytorch_job=true", "instance_type=p5.48xlarge",
         "container=example.com/train:1", f"cluster.namespace={NAMESPACE}",
         f"cluster.queue_name={QUEUE}", f"base_results_dir={tmp_path / 'results'}",
         *overrides],
        capture_output=True, text=True, cwd=REPO, env=env, check=False, timeout=300,
    )  # fmt: skip
    return proc, helm


def lines(proc: subprocess.CompletedProcess[str]) -> dict[str, str]:
    found = {}
    for line in proc.stdout.splitlines():
        status, _, rest = line.partition(" ")
        name, _, message = rest.strip().partition(": ")
        found[name] = f"{status} {message}"
    return found


def test_a_ready_cluster_passes_and_every_call_is_a_real_api_path(
    cluster: Cluster, tmp_path: Path
) -> None:
    proc, helm = preflight(
        tmp_path, cluster, "cluster.persistent_volume_claims=[{claimName:fsx-claim,mountPath:/fsx}]"
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    got = lines(proc)
    assert all(v.startswith("ok ") for v in got.values()), proc.stdout
    assert got["k8s Kueue queue"] == (
        f"ok LocalQueue {NAMESPACE}/{QUEUE} exists (ClusterQueue team-a-cq)"
    )
    assert cluster.paths() == [
        f"GET /api/v1/namespaces/{NAMESPACE}",
        f"GET /apis/apiextensions.k8s.io/v1/customresourcedefinitions/{HYPERPOD_CRD}",
        "POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
        "POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
        "POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
        f"GET /apis/kueue.x-k8s.io/v1beta1/namespaces/{NAMESPACE}/localqueues/{QUEUE}",
        f"GET /api/v1/namespaces/{NAMESPACE}/persistentvolumeclaims/fsx-claim",
        "GET /api/v1/nodes",
    ]
    reviews = [r["body"]["spec"]["resourceAttributes"] for r in cluster.requests
               if r["method"] == "POST"]  # fmt: skip
    assert reviews == [
        {"group": g, "resource": r, "verb": "create", "namespace": NAMESPACE}
        for g, r in (("sagemaker.amazonaws.com", "hyperpodpytorchjobs"), ("", "configmaps"),
                     ("", "secrets"))
    ]  # fmt: skip
    nodes = next(r for r in cluster.requests if r["path"] == "/api/v1/nodes")
    assert nodes["query"]["labelSelector"] == [
        "node.kubernetes.io/instance-type in (p5.48xlarge,ml.p5.48xlarge)"
    ]
    assert {r["authorization"] for r in cluster.requests} == {"Bearer token-for-hp"}
    (dry_run,) = helm.calls()
    argv = dry_run["argv"]
    assert argv[0] == "install" and argv[-1] == "--dry-run=server"
    assert argv[3:5] == ["--namespace", NAMESPACE]
    assert not argv[2].startswith(str(tmp_path / "results"))  # a temporary chart folder
    assert not (tmp_path / "results").exists()  # nothing written


def test_what_is_missing_fails_with_its_fix(cluster: Cluster, tmp_path: Path) -> None:
    cluster.crds.clear()
    cluster.queues.clear()
    cluster.denied = {"secrets"}
    cluster.gpu_nodes = 1
    proc, _ = preflight(
        tmp_path, cluster, "cluster.persistent_volume_claims=[{claimName:gone,mountPath:/fsx}]",
        helm_exit=1,
    )  # fmt: skip
    assert proc.returncode == 1
    got = lines(proc)
    assert got["k8s CRD"] == (
        f"fail CRD {HYPERPOD_CRD} is not installed: no HyperPodPyTorchJob can be created; fix: "
        "install the EKS add-on amazon-sagemaker-hyperpod-training-operator"
    )
    assert got["k8s access"].startswith(f"fail you may not create secrets in namespace {NAMESPACE}")
    assert got["k8s Kueue queue"].startswith(
        f"fail LocalQueue {NAMESPACE}/{QUEUE} does not exist: Kueue would keep the job suspended"
    )
    assert got["k8s volumes"].startswith("fail PersistentVolumeClaim gone does not exist")
    assert got["k8s nodes"].startswith(
        "fail 1 of 1 p5.48xlarge node(s) have 8 nvidia.com/gpu, 32 vpc.amazonaws.com/efa "
        "allocatable; the job needs 2"
    )
    assert got["k8s helm dry-run"].startswith(
        "fail helm install --dry-run=server failed: Error: INSTALLATION FAILED: quota"
    )


def test_without_the_right_to_read_crds_discovery_decides(cluster: Cluster, tmp_path: Path) -> None:
    cluster.crd_readable = False
    proc, _ = preflight(tmp_path, cluster)
    got = lines(proc)
    assert (
        got["k8s CRD"] == "ok hyperpodpytorchjobs are served by sagemaker.amazonaws.com/v1 "
        "(API discovery)"
    )
    assert "GET /apis/sagemaker.amazonaws.com/v1" in cluster.paths()


def test_an_unknown_namespace_and_context_fail(cluster: Cluster, tmp_path: Path) -> None:
    proc, _ = preflight(tmp_path, cluster, "cluster.namespace=nowhere")
    got = lines(proc)
    assert got["k8s namespace"].startswith("fail namespace nowhere does not exist")
    proc, _ = preflight(tmp_path, cluster, "cluster.kube_context=other")
    assert lines(proc)["k8s context"] == (
        "fail kube context 'other' is not in the kubeconfig (it has: hp); fix: set "
        "cluster.kube_context to one of them"
    )
    assert proc.returncode == 1


def test_an_unreachable_api_server_is_bounded_and_one_line_per_check(tmp_path: Path) -> None:
    down = Cluster(url="http://127.0.0.1:9")
    proc, _ = preflight(tmp_path, down)
    assert proc.returncode == 1
    got = lines(proc)
    assert got["k8s namespace"].startswith("fail could not check: BackendError: cannot reach")
    assert all("\n" not in v for v in got.values())


def test_a_launch_runs_the_cheap_checks_and_preflight_false_skips_them(
    cluster: Cluster, tmp_path: Path
) -> None:
    helm = k8s_standins.fake_helm(tmp_path)
    config = k8s_standins.kubeconfig(tmp_path / "kubeconfig", {"hp": cluster.url}, current="hp")
    env = {
        **os.environ,
        **helm.env(stdout="STATUS: deployed\n"),
        "KUBECONFIG": str(config),
        "HPL_STATE_DIR": str(tmp_path / "state"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
    }
    base = [
        sys.executable,
        str(REPO / "main.py"),
        "cluster=k8s",
        "container=example.com/t:1",
        f"base_results_dir={tmp_path / 'results'}",
        "cluster.kube_context=other",
    ]
    proc = subprocess.run(base, capture_output=True, text=True, env=env, cwd=REPO, check=False)
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        "fail k8s context: kube context 'other' is not in the kubeconfig (it has: hp); fix: set "
        "cluster.kube_context to one of them",
        "error: preflight failed (see the lines above); nothing was submitted",
    ]
    assert not (tmp_path / "results").exists() and helm.calls() == []
    assert cluster.requests == []  # the cheap checks ask no server
    proc = subprocess.run([*base, "preflight=false"], capture_output=True, text=True, env=env,
                          cwd=REPO, check=False)  # fmt: skip
    assert [c["argv"][0] for c in helm.calls()] == ["install"]
