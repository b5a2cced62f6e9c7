"""Follow a Kubernetes job: `status`, `logs`, `cancel` through `python -m hyperpod_launcher`.

Jobs are launched first with the real launcher (`cluster=k8s`, the recording helm on PATH),
so every command reads a real job.json. The kubernetes client talks to a stand-in API server
on 127.0.0.1 behind a kubeconfig: it answers with canned PyTorchJobs, pods and logs, the way
the API server does, and records every request (method, path, query, credentials). An opt-in
test runs the same commands against a real cluster when KUBECONFIG is set.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import k8s_standins
import pytest

from hyperpod_launcher.telemetry.node_watch import format_line
from tests.conftest import REPO, require, require_tool, run_cli, run_launcher

HF_TOKEN = "hf_LifecycleTestNotReal0123456789"
NAMESPACE = "team-a"
NO_KUBERNETES = str(REPO / "tests" / "fixtures" / "no_kubernetes")


# --- the API server stand-in ----------------------------------------------------------------


@dataclass
class FakeCluster:
    url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    jobs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # answered in turn
    pods: list[dict[str, Any]] = field(default_factory=list)
    logs: dict[str, str] = field(default_factory=dict)  # pod name -> its container's log
    secrets: set[str] = field(default_factory=set)
    crd_installed: bool = True
    # For a job launched with --wait, whose name is known only once it is asked for: a
    # function of the name that fills jobs/pods/logs on the first request.
    on_first_sight: Any = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def calls(self, *methods: str) -> list[tuple[str, str, dict[str, list[str]]]]:
        return [
            (r["method"], r["path"], r["query"])
            for r in self.requests
            if not methods or r["method"] in methods
        ]


def _not_found(name: str, kind: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "message": f'{kind} "{name}" not found',
        "reason": "NotFound",
        "details": {"name": name, "kind": kind},
        "code": 404,
    }


NO_RESOURCE = {
    "kind": "Status",
    "apiVersion": "v1",
    "status": "Failure",
    "message": "the server could not find the requested resource",
    "reason": "NotFound",
    "details": {},
    "code": 404,
}


def _handler(state: FakeCluster) -> type[BaseHTTPRequestHandler]:
    jobs_path = re.compile(
        r"^/apis/(?:kubeflow\.org/v1/namespaces/[^/]+/pytorchjobs|"
        r"sagemaker\.amazonaws\.com/v1/namespaces/[^/]+/hyperpodpytorchjobs)/([^/]+)$"
    )
    pods_path = re.compile(r"^/api/v1/namespaces/([^/]+)/pods$")
    log_path = re.compile(r"^/api/v1/namespaces/([^/]+)/pods/([^/]+)/log$")
    secrets_path = re.compile(r"^/api/v1/namespaces/([^/]+)/secrets(?:/([^/]+))?$")

    class Handler(k8s_standins.JsonHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms stall

        def _record(self) -> tuple[str, dict[str, list[str]], Any]:
            url = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            query = parse_qs(url.query)
            with state.lock:
                state.requests.append(
                    {
                        "method": self.command,
                        "path": url.path,
                        "query": query,
                        "authorization": self.headers.get("Authorization"),
                    }
                )
            return url.path, query, json.loads(raw) if raw else None

        def do_GET(self) -> None:
            path, query, _ = self._record()
            if match := jobs_path.match(path):
                if not state.crd_installed:
                    return self._reply(404, NO_RESOURCE)
                with state.lock:
                    if match.group(1) not in state.jobs and state.on_first_sight:
                        state.on_first_sight(state, match.group(1))
                answers = state.jobs.get(match.group(1))
                if not answers:
                    return self._reply(404, _not_found(match.group(1), path.split("/")[-2]))
                with state.lock:
                    job = answers.pop(0) if len(answers) > 1 else answers[0]
                return self._reply(200, job)
            if pods_path.match(path):
                key, _, value = query["labelSelector"][0].partition("=")
                items = [p for p in state.pods if p["metadata"]["labels"].get(key) == value]
                return self._reply(200, {"kind": "PodList", "apiVersion": "v1", "items": items})
            if match := log_path.match(path):
                return self._log(match.group(2), query)
            return self._reply(404, NO_RESOURCE)

        def _log(self, pod: str, query: dict[str, list[str]]) -> None:
            if pod not in state.logs:
                return self._reply(404, _not_found(pod, "pods"))
            data = state.logs[pod].encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            if query.get("follow") != ["true"]:
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return
            # A followed log arrives in chunks, as the container writes it.
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for line in data.splitlines(keepends=True):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")

        def do_POST(self) -> None:
            path, _, body = self._record()
            if secrets_path.match(path):
                state.secrets.add(body["metadata"]["name"])
                return self._reply(201, body)
            self._reply(404, NO_RESOURCE)

        def do_DELETE(self) -> None:
            path, _, _ = self._record()
            match = secrets_path.match(path)
            if match and match.group(2) in state.secrets:
                state.secrets.discard(match.group(2))
                return self._reply(200, {"kind": "Status", "status": "Success", "code": 200})
            self._reply(404, _not_found(match.group(2) if match else path, "secrets"))

    return Handler


# --- canned objects -------------------------------------------------------------------------


def pytorchjob(name: str, *conditions: tuple[str, str], deleting: bool = False) -> dict:
    job: dict[str, Any] = {
        "apiVersion": "kubeflow.org/v1",
        "kind": "PyTorchJob",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "status": {
            "conditions": [
                {"type": kind, "status": "True", "reason": f"PyTorchJob{kind}", "message": text}
                for kind, text in conditions
            ]
        },
    }
    if deleting:
        job["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return job


def pod(job: str, kind: str, index: int, phase: str, state: dict, **extra: Any) -> dict:
    name = f"{job}-{kind}-{index}"
    container = {"name": "pytorch", "state": state, "restartCount": 0, **extra}
    return {
        "metadata": {
            "name": name,
            "namespace": NAMESPACE,
            "uid": f"uid-{name}",
            "labels": {
                "training.kubeflow.org/job-name": job,
                "training.kubeflow.org/replica-type": kind,
                "training.kubeflow.org/replica-index": str(index),
            },
        },
        "status": {"phase": phase, "containerStatuses": [container]},
    }


RUNNING = {"running": {"startedAt": "2026-01-01T00:00:00Z"}}


def terminated(code: int) -> dict:
    return {"terminated": {"exitCode": code, "reason": "Completed" if code == 0 else "Error"}}


# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeCluster]:
    require(importlib.util.find_spec("kubernetes") is not None, "the kubernetes Python client")
    state = FakeCluster()
    with k8s_standins.serve(_handler(state)) as httpd:
        state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
        yield state


@dataclass
class Env:
    tmp: Path
    helm: k8s_standins.FakeHelm
    vars: dict[str, str]


@pytest.fixture
def env(tmp_path: Path, cluster: FakeCluster) -> Env:
    cluster.requests.clear()
    cluster.jobs.clear()
    cluster.pods.clear()
    cluster.logs.clear()
    cluster.crd_installed = True
    cluster.on_first_sight = None
    # The current context is another (unreachable) cluster: commands must use the recorded one.
    config = k8s_standins.kubeconfig(
        tmp_path / "kubeconfig",
        {"elsewhere": "http://127.0.0.1:9", "test-ctx": cluster.url},
        current="elsewhere",
    )
    helm = k8s_standins.fake_helm(tmp_path)
    variables = {
        **helm.env(stdout="STATUS: deployed\n"),
        "KUBECONFIG": str(config),
        "HPL_STATE_DIR": str(tmp_path / "state"),
        "HPL_TEST_HF": HF_TOKEN,
    }
    return Env(tmp_path, helm, variables)


def launch(env: Env, cluster: FakeCluster, *extra: str) -> dict[str, Any]:
    """A real launch: helm install (recorded) and the tokens' Secret (created)."""
    proc = run_launcher(
        "cluster=k8s",
        "container=public.ecr.aws/docker/library/python:3.11-slim",
        f"base_results_dir={env.tmp / 'results'}",
        f"cluster.namespace={NAMESPACE}",
        "cluster.kube_context=test-ctx",
        "training_cfg.run.nodes=2",
        "+env_vars.HF_TOKEN=${oc.env:HPL_TEST_HF}",
        *extra,
        env=env.vars,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    record = json.loads((env.tmp / "results" / "allreduce-smoke" / "job.json").read_text())
    cluster.requests.clear()
    return record


def release(record: dict[str, Any]) -> str:
    return record["details"]["release"]


def status(env: Env, ref: str) -> dict[str, Any]:
    proc = run_cli("status", ref, "--json", env=env.vars)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def one_line_error(proc: Any) -> str:
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


# --- status ---------------------------------------------------------------------------------


def test_status_asks_for_the_job_and_its_pods_in_the_recorded_namespace_and_context(
    env: Env, cluster: FakeCluster
) -> None:
    record = launch(env, cluster)
    name = release(record)
    assert record["details"]["namespace"] == NAMESPACE
    assert record["details"]["kube_context"] == "test-ctx"
    cluster.jobs[name] = [pytorchjob(name, ("Created", ""), ("Running", "running"))]
    cluster.pods += [pod(name, "master", 0, "Running", RUNNING)]
    cluster.pods += [pod(name, "worker", 0, "Running", RUNNING)]
    cluster.pods += [pod("someone-else", "master", 0, "Running", RUNNING)]

    got = status(env, record["name"])
    assert (got["state"], got["backend_state"], got["exit_code"]) == ("running", "Running", None)
    assert got["detail"] == ""
    assert got["job_id"] == f"{NAMESPACE}/{name}"
    pods_call = (
        "GET",
        f"/api/v1/namespaces/{NAMESPACE}/pods",
        {"labelSelector": [f"training.kubeflow.org/job-name={name}"]},
    )
    assert cluster.calls()[:2] == [
        ("GET", f"/apis/kubeflow.org/v1/namespaces/{NAMESPACE}/pytorchjobs/{name}", {}),
        pods_call,
    ]
    # Then the progress: the logs of this job's pods (and no other's).
    assert cluster.calls()[2:] == [
        pods_call,
        *(
            ("GET", f"/api/v1/namespaces/{NAMESPACE}/pods/{name}-{kind}-0/log",
             {"container": ["pytorch"]})
            for kind in ("master", "worker")
        ),
    ]  # fmt: skip
    assert {r["authorization"] for r in cluster.requests} == {"Bearer token-for-test-ctx"}

    plain = run_cli("status", record["job_id"], env=env.vars)
    assert plain.stdout.strip() == (
        f"allreduce-smoke (k8s job {NAMESPACE}/{name}): running (Running)"
    )


def test_the_context_current_at_submit_is_recorded_and_used_later(
    env: Env, cluster: FakeCluster
) -> None:
    config = Path(env.vars["KUBECONFIG"])
    k8s_standins.kubeconfig(
        config, {"elsewhere": "http://127.0.0.1:9", "test-ctx": cluster.url}, current="test-ctx"
    )
    record = launch(env, cluster, "cluster.kube_context=null")
    assert record["details"]["kube_context"] == "test-ctx"
    name = release(record)
    cluster.jobs[name] = [pytorchjob(name, ("Created", ""), ("Running", "running"))]
    k8s_standins.kubeconfig(  # the user switches to another cluster afterwards
        config, {"elsewhere": "http://127.0.0.1:9", "test-ctx": cluster.url}, current="elsewhere"
    )
    assert status(env, record["name"])["state"] == "running"
    assert {r["authorization"] for r in cluster.requests} == {"Bearer token-for-test-ctx"}


@pytest.mark.parametrize(
    "case",
    [
        "succeeded",
        "failed",
        "image-pull",
        "checkout-failed",
        "unschedulable",
        "restarting",
        "no-conditions",
    ],
)
def test_status_maps_conditions_and_pods_onto_the_vocabulary(
    case: str, env: Env, cluster: FakeCluster
) -> None:
    record = launch(env, cluster)
    name = release(record)
    created = ("Created", f"PyTorchJob {name} is created.")
    master, worker = (f"{name}-master-0", f"{name}-worker-0")
    if case == "succeeded":
        cluster.jobs[name] = [
            pytorchjob(name, created, ("Running", ""), ("Succeeded", "PyTorchJob succeeded."))
        ]
        cluster.pods += [
            pod(name, "master", 0, "Succeeded", terminated(0)),
            pod(name, "worker", 0, "Succeeded", terminated(0)),
        ]
        expected = ("succeeded", "Succeeded", 0, "")
    elif case == "failed":
        message = f"PyTorchJob {name} is failed because 1 Master replica(s) failed."
        cluster.jobs[name] = [pytorchjob(name, created, ("Running", ""), ("Failed", message))]
        cluster.pods += [
            pod(name, "master", 0, "Failed", terminated(3)),
            pod(name, "worker", 0, "Failed", terminated(1)),
        ]
        detail = f"{message}; pod {master}: Error (exit code 3); pod {worker}: Error (exit code 1)"
        expected = ("failed", "Failed", 3, detail)
    elif case == "image-pull":
        cluster.jobs[name] = [pytorchjob(name, created)]
        waiting = {
            "waiting": {"reason": "ImagePullBackOff", "message": 'Back-off pulling image "x"'}
        }
        creating = {"waiting": {"reason": "ContainerCreating"}}
        cluster.pods += [
            pod(name, "master", 0, "Pending", waiting),
            pod(name, "worker", 0, "Pending", creating),
        ]
        detail = f'pod {master}: ImagePullBackOff: Back-off pulling image "x"'
        expected = ("pending", "Created", None, detail)
    elif case == "checkout-failed":
        cluster.jobs[name] = [pytorchjob(name, created)]
        init = pod(name, "master", 0, "Pending", {"waiting": {"reason": "PodInitializing"}})
        init["status"]["initContainerStatuses"] = [
            {"name": "checkout", "state": terminated(128), "restartCount": 0}
        ]
        cluster.pods.append(init)
        detail = f"pod {master}: init container checkout Error (exit code 128)"
        expected = ("pending", "Created", None, detail)
    elif case == "unschedulable":
        cluster.jobs[name] = [pytorchjob(name, created)]
        unscheduled = pod(name, "master", 0, "Pending", {})
        unscheduled["status"] = {
            "phase": "Pending",
            "conditions": [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": "0/3 nodes are available: 3 Insufficient nvidia.com/gpu.",
                }
            ],
        }
        cluster.pods.append(unscheduled)
        detail = (
            f"pod {master}: Unschedulable: 0/3 nodes are available: 3 Insufficient nvidia.com/gpu."
        )
        expected = ("pending", "Created", None, detail)
    elif case == "restarting":
        message = f"PyTorchJob {name} is restarting because 1 Master replica(s) failed."
        cluster.jobs[name] = [pytorchjob(name, created, ("Running", ""), ("Restarting", message))]
        last = {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}
        cluster.pods += [pod(name, "master", 0, "Running", RUNNING, restartCount=1, lastState=last)]
        detail = (
            f"{message}; pod {master}: restarted 1 time(s), last exit: OOMKilled (exit code 137)"
        )
        expected = ("running", "Restarting", None, detail)
    else:  # no training operator has looked at it yet
        cluster.jobs[name] = [pytorchjob(name)]
        detail = "the training operator has not picked the job up yet"
        expected = ("pending", "NoConditions", None, detail)
    got = status(env, record["job_id"])
    assert (got["state"], got["backend_state"], got["exit_code"], got["detail"]) == expected


def test_a_job_that_is_gone_is_unknown_with_the_reason(env: Env, cluster: FakeCluster) -> None:
    record = launch(env, cluster)
    got = status(env, record["launch_id"])
    assert (got["state"], got["backend_state"]) == ("unknown", "NotFound")
    assert f"PyTorchJob {NAMESPACE}/{release(record)} is not in {cluster.url}" in got["detail"]
    assert "ttlSecondsAfterFinished" in got["detail"]
    # Gone: the pods are not asked for.
    assert [path for _, path, _ in cluster.calls()] == [
        f"/apis/kubeflow.org/v1/namespaces/{NAMESPACE}/pytorchjobs/{release(record)}"
    ]


def test_jobs_lists_the_launch_with_its_state(env: Env, cluster: FakeCluster) -> None:
    record = launch(env, cluster)
    name = release(record)
    cluster.jobs[name] = [pytorchjob(name, ("Created", ""), ("Running", ""))]
    proc = run_cli("jobs", env=env.vars)
    assert proc.returncode == 0, proc.stderr
    (row,) = proc.stdout.splitlines()[1:]
    assert row.split()[:5] == ["allreduce-smoke", "k8s", record["job_id"], "running", "(Running)"]
    # `jobs` asks for the job only (its state), not for pods.
    assert [m for m, _, _ in cluster.calls()] == ["GET"]


def test_jobs_on_an_unreachable_cluster_warns_once_and_lists_the_job(
    env: Env, cluster: FakeCluster
) -> None:
    launch(env, cluster)
    launch(env, cluster, "training_cfg.run.name=second")
    config = k8s_standins.kubeconfig(
        env.tmp / "down", {"test-ctx": "http://127.0.0.1:9"}, current="test-ctx"
    )
    proc = run_cli("jobs", env={**env.vars, "KUBECONFIG": str(config)})
    assert proc.returncode == 0, proc.stderr
    (warning,) = proc.stderr.strip().splitlines()
    assert warning.startswith("warning: cannot reach the Kubernetes API server at")
    assert [line.split()[3:5] for line in proc.stdout.splitlines()[1:]] == [["unknown", "(?)"]] * 2


# --- logs -----------------------------------------------------------------------------------


def logs_of(name: str) -> dict[str, str]:
    return {
        f"{name}-master-0": "".join(f"[rank{r}]:step {s}\n" for s in range(2) for r in (0, 1)),
        f"{name}-worker-0": "".join(f"[rank{r}]:step {s}\n" for s in range(2) for r in (2, 3)),
    }


def test_logs_print_every_pod_and_rank_selects_lines(env: Env, cluster: FakeCluster) -> None:
    record = launch(env, cluster)
    name = release(record)
    cluster.jobs[name] = [pytorchjob(name, ("Created", ""), ("Running", ""))]
    cluster.pods += [
        pod(name, "worker", 0, "Running", RUNNING),
        pod(name, "master", 0, "Running", RUNNING),
    ]
    cluster.logs.update(logs_of(name))
    everything = run_cli("logs", record["job_id"], env=env.vars)
    assert everything.returncode == 0, everything.stderr
    assert everything.stdout == "".join(logs_of(name).values())  # master first
    log_calls = [c for c in cluster.calls() if c[1].endswith("/log")]
    assert log_calls == [
        (
            "GET",
            f"/api/v1/namespaces/{NAMESPACE}/pods/{name}-{kind}-0/log",
            {"container": ["pytorch"]},
        )
        for kind in ("master", "worker")
    ]
    rank = run_cli("logs", record["job_id"], "--rank", "2", env=env.vars)
    assert rank.stdout.splitlines() == ["[rank2]:step 0", "[rank2]:step 1"]


def test_logs_of_a_job_without_pods_say_so_on_stderr_only(env: Env, cluster: FakeCluster) -> None:
    record = launch(env, cluster)
    name = release(record)
    cluster.jobs[name] = [pytorchjob(name, ("Created", ""))]
    proc = run_cli("logs", record["job_id"], env=env.vars)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    (note,) = proc.stderr.splitlines()
    assert note == f"no pods of PyTorchJob {NAMESPACE}/{name} (pending (Created))"


def test_logs_follow_streams_every_pod_until_the_job_ends(env: Env, cluster: FakeCluster) -> None:
    record = launch(env, cluster)
    name = release(record)
    cluster.jobs[name] = [
        pytorchjob(name, ("Created", ""), ("Running", "")),
        pytorchjob(name, ("Created", ""), ("Running", ""), ("Succeeded", "")),
    ]
    cluster.pods += [
        pod(name, "master", 0, "Running", RUNNING),
        pod(name, "worker", 0, "Running", RUNNING),
    ]
    cluster.logs.update(logs_of(name))
    proc = run_cli("logs", record["job_id"], "--follow", "--rank", "3", env=env.vars)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["[rank3]:step 0", "[rank3]:step 1"]
    follows = [(p, q) for m, p, q in cluster.calls() if p.endswith("/log")]
    assert sorted(follows) == [
        (f"/api/v1/namespaces/{NAMESPACE}/pods/{name}-{kind}-0/log",
         {"container": ["pytorch"], "follow": ["true"]})
        for kind in ("master", "worker")
    ]  # fmt: skip
    # Each container instance is streamed once, though the job was polled until it ended.
    job_path = f"/apis/kubeflow.org/v1/namespaces/{NAMESPACE}/pytorchjobs/{name}"
    assert [p for _, p, _ in cluster.calls()].count(job_path) >= 2


@pytest.mark.parametrize("outcome", ["Succeeded", "Failed"])
def test_wait_follows_the_job_and_exits_with_its_outcome(
    outcome: str, env: Env, cluster: FakeCluster
) -> None:
    def the_job(state: FakeCluster, name: str) -> None:
        running = pytorchjob(name, ("Created", ""), ("Running", ""))
        state.jobs[name] = [running, pytorchjob(name, ("Created", ""), (outcome, ""))]
        code = 0 if outcome == "Succeeded" else 3
        state.pods.append(pod(name, "master", 0, outcome, terminated(code)))
        state.logs[f"{name}-master-0"] = "[rank0]:training\n[rank1]:training\n"

    cluster.on_first_sight = the_job
    proc = run_launcher(
        "cluster=k8s",
        "container=public.ecr.aws/docker/library/python:3.11-slim",
        f"base_results_dir={env.tmp / 'results'}",
        f"cluster.namespace={NAMESPACE}",
        "cluster.kube_context=test-ctx",
        "--wait",
        env=env.vars,
    )
    assert proc.returncode == (0 if outcome == "Succeeded" else 1), proc.stdout + proc.stderr
    assert "[rank0]:training\n[rank1]:training\n" in proc.stdout
    state = "succeeded" if outcome == "Succeeded" else "failed"
    exit_code = 0 if outcome == "Succeeded" else 3
    assert f": {state} ({outcome}), exit code {exit_code}" in proc.stdout


def test_status_reads_progress_from_the_pods_logs(env: Env, cluster: FakeCluster) -> None:
    record = launch(env, cluster)
    name = release(record)
    cluster.jobs[name] = [pytorchjob(name, ("Created", ""), ("Running", "running"))]
    cluster.pods += [
        pod(name, "master", 0, "Running", RUNNING),
        pod(name, "worker", 0, "Running", RUNNING),
    ]
    steps = [
        {"event": "step", "step": s, "max_steps": 8, "loss": 3.0 - s / 10, "tokens": 512,
         "steps": 2, "step_time_s": 0.25, "time": 1_700_000_000.0 + s}
        for s in (2, 4)
    ]  # fmt: skip
    master = "".join(f"[rank{r}]:training\n" for r in (0, 1))
    master += "".join(f"[rank0]:{format_line(x)}\n" for x in steps)
    cluster.logs.update({f"{name}-master-0": master, f"{name}-worker-0": "[rank2]:training\n"})
    figures = status(env, record["name"])["progress"]
    assert (figures["step"], figures["max_steps"], figures["percent"]) == (4, 8, 50.0)
    assert figures["loss"] == 2.6 and figures["tokens"] == 1024
    assert figures["accelerators"] == 4  # 2 nodes x 2 processes
    assert figures["tokens_per_s_per_accelerator"] == 1024 / (2 * 2 * 0.25) / 4
    assert figures["eta_s"] == (8 - 4) * 0.25
    plain = run_cli("status", record["job_id"], env=env.vars).stdout
    assert "progress: step 4/8 (50 %), loss 2.6, 256.0 tok/s/GPU, MFU ?, ETA 1s" in plain


# --- cancel ---------------------------------------------------------------------------------


def test_cancel_uninstalls_the_release_deletes_the_secret_and_is_idempotent(
    env: Env, cluster: FakeCluster
) -> None:
    record = launch(env, cluster)
    name = release(record)
    secret = f"{name}-secrets"
    assert record["details"]["secret"] == {"name": secret, "action": "created"}
    assert secret in cluster.secrets
    cluster.jobs[name] = [pytorchjob(name, ("Created", ""), ("Running", ""))]

    proc = run_cli("cancel", record["name"], env=env.vars)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == (
        f"cancelled k8s job {NAMESPACE}/{name}: helm uninstall {name}; deleted Secret "
        f"{NAMESPACE}/{secret} (the job and its pods are being deleted)"
    )
    install, uninstall = env.helm.calls()
    assert install["argv"][:2] == ["install", name]
    assert uninstall["argv"] == [
        "uninstall", name, "--namespace", NAMESPACE, "--kube-context", "test-ctx",
    ]  # fmt: skip
    assert HF_TOKEN not in json.dumps(uninstall["argv"])
    assert cluster.calls("DELETE") == [
        ("DELETE", f"/api/v1/namespaces/{NAMESPACE}/secrets/{secret}", {})
    ]
    assert secret not in cluster.secrets
    job_json = json.loads((Path(record["job_dir"]) / "job.json").read_text())
    assert job_json["cancelled_at"] and job_json["launch_id"] == record["launch_id"]

    # While the operator deletes it, and once it is gone: cancelled.
    cluster.jobs[name] = [pytorchjob(name, ("Created", ""), ("Running", ""), deleting=True)]
    assert status(env, record["job_id"])["state"] == "cancelled"
    del cluster.jobs[name]
    got = status(env, record["job_id"])
    assert (got["state"], got["backend_state"]) == ("cancelled", "Deleted")

    again = run_cli("cancel", record["job_id"], env=env.vars)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == (
        f"k8s job {NAMESPACE}/{name} was already cancelled at {job_json['cancelled_at']}"
    )
    assert len(env.helm.calls()) == 2


def test_cancel_of_a_finished_job_changes_nothing(env: Env, cluster: FakeCluster) -> None:
    record = launch(env, cluster)
    name = release(record)
    cluster.jobs[name] = [pytorchjob(name, ("Created", ""), ("Succeeded", ""))]
    proc = run_cli("cancel", record["job_id"], env=env.vars)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(
        f"k8s job {NAMESPACE}/{name} already finished: succeeded (Succeeded)"
    )
    assert len(env.helm.calls()) == 1  # the install only
    assert cluster.calls("DELETE") == []
    assert "cancelled_at" not in json.loads((Path(record["job_dir"]) / "job.json").read_text())


def test_cancel_of_an_uninstalled_release_says_so(env: Env, cluster: FakeCluster) -> None:
    record = launch(env, cluster)
    name = release(record)
    helm_says = f"Error: uninstall: Release not loaded: {name}: release: not found\n"
    proc = run_cli(
        "cancel", record["job_id"], env={**env.vars, **env.helm.env(exit_code=1, stderr=helm_says)}
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == (
        f"k8s job {NAMESPACE}/{name} is already uninstalled (helm: release not found)"
    )
    assert cluster.calls("DELETE") == []


def test_a_failing_helm_uninstall_is_one_line(env: Env, cluster: FakeCluster) -> None:
    record = launch(env, cluster)
    name = release(record)
    cluster.jobs[name] = [pytorchjob(name, ("Created", ""))]
    broken = env.helm.env(exit_code=1, stderr="Error: Kubernetes cluster unreachable\n")
    line = one_line_error(run_cli("cancel", record["job_id"], env={**env.vars, **broken}))
    assert line == "error: helm uninstall failed (exit 1): Error: Kubernetes cluster unreachable"
    assert cluster.calls("DELETE") == []


# --- errors ---------------------------------------------------------------------------------


def test_no_kubeconfig_is_one_line(env: Env, cluster: FakeCluster) -> None:
    record = launch(env, cluster)
    missing = str(env.tmp / "no-such-kubeconfig")
    line = one_line_error(
        run_cli("status", record["job_id"], env={**env.vars, "KUBECONFIG": missing})
    )
    assert "no Kubernetes configuration" in line and "set KUBECONFIG" in line


def test_a_context_missing_from_the_kubeconfig_is_one_line(env: Env, cluster: FakeCluster) -> None:
    record = launch(env, cluster)
    other = k8s_standins.kubeconfig(env.tmp / "other", {"prod": cluster.url}, current="prod")
    proc = run_cli("logs", record["job_id"], env={**env.vars, "KUBECONFIG": str(other)})
    line = one_line_error(proc)
    assert "kube context 'test-ctx'" in line and "(it has: prod)" in line
    assert cluster.requests == []


def test_an_unreachable_api_server_is_one_line(env: Env, cluster: FakeCluster) -> None:
    record = launch(env, cluster)
    down = k8s_standins.kubeconfig(
        env.tmp / "down", {"test-ctx": "http://127.0.0.1:9"}, current="test-ctx"
    )
    line = one_line_error(
        run_cli("status", record["job_id"], env={**env.vars, "KUBECONFIG": str(down)})
    )
    assert line.startswith("error: cannot reach the Kubernetes API server at http://127.0.0.1:9")
    assert "Connection refused" in line


def test_a_cluster_without_the_training_operator_is_one_line(
    env: Env, cluster: FakeCluster
) -> None:
    record = launch(env, cluster)
    cluster.crd_installed = False
    line = one_line_error(run_cli("status", record["job_id"], env=env.vars))
    assert "no pytorchjobs.kubeflow.org/v1 resource" in line


def test_missing_helm_on_cancel_is_one_line(env: Env, cluster: FakeCluster) -> None:
    record = launch(env, cluster)
    name = release(record)
    cluster.jobs[name] = [pytorchjob(name, ("Created", ""), ("Running", ""))]
    line = one_line_error(
        run_cli("cancel", record["job_id"], env={**env.vars, "PATH": str(env.tmp)})
    )
    assert "helm not found on PATH" in line
    assert cluster.calls("DELETE") == []


def test_without_the_kubernetes_client_the_error_names_the_extra(
    env: Env, cluster: FakeCluster
) -> None:
    record = launch(env, cluster)
    proc = run_cli("status", record["job_id"], env={**env.vars, "PYTHONPATH": NO_KUBERNETES})
    line = one_line_error(proc)
    assert "pip install 'hyperpod-launcher[k8s]'" in line


# --- opt-in: a real cluster -----------------------------------------------------------------


def test_status_logs_cancel_against_a_real_cluster_when_kubeconfig_is_set(tmp_path: Path) -> None:
    """Opt-in (skipped without KUBECONFIG, in CI too): launch the smoke job on a real cluster
    with the Kubeflow training operator (namespace HPL_K8S_NAMESPACE, default `default`),
    read its status and logs, then cancel it (uninstalls the release)."""
    if not os.environ.get("KUBECONFIG"):
        pytest.skip("opt-in: set KUBECONFIG to a real cluster with the Kubeflow training operator")
    helm = require_tool("helm")
    env = {
        "PATH": f"{Path(helm).parent}{os.pathsep}{os.environ['PATH']}",
        "HPL_STATE_DIR": str(tmp_path / "state"),
    }
    image = os.environ.get("HPL_K8S_IMAGE", "pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime")
    proc = run_launcher(
        "cluster=k8s",
        f"container={image}",
        f"base_results_dir={tmp_path}",
        f"cluster.namespace={os.environ.get('HPL_K8S_NAMESPACE', 'default')}",
        "cluster.pullPolicy=IfNotPresent",
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    record = json.loads((tmp_path / "allreduce-smoke" / "job.json").read_text())
    try:
        got = run_cli("status", record["job_id"], "--json", env=env)
        assert got.returncode == 0, got.stderr
        assert json.loads(got.stdout)["state"] in ("pending", "running", "succeeded", "failed")
        assert run_cli("logs", record["job_id"], env=env).returncode == 0
    finally:
        cancel = run_cli("cancel", record["job_id"], env=env)
    assert cancel.returncode == 0, cancel.stderr
    assert re.search(r"cancelled k8s job|already finished", cancel.stdout), cancel.stdout
    if "already finished" in cancel.stdout:  # cancel leaves a finished job's release
        details = record["details"]
        subprocess.run(
            [helm, "uninstall", details["release"], "--namespace", details["namespace"]],
            check=True,
        )
