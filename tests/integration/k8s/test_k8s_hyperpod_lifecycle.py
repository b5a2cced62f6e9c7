"""`status`, `logs`, `cancel` of a HyperPodPyTorchJob, against the recording API stand-in.

The job is launched with the real launcher (`cluster.use_hyperpod_pytorch_job=true`, the
recording helm on PATH); the stand-in answers on the HyperPod operator's real API paths
(sagemaker.amazonaws.com/v1 hyperpodpytorchjobs, pods by the operator's HPJob label).
"""

# ruff: noqa: F811  (the tests take the imported fixtures as arguments)
from __future__ import annotations

import json
from typing import Any

from test_k8s_lifecycle import (  # the stand-in cluster, its fixtures and helpers
    NAMESPACE,
    RUNNING,
    Env,
    FakeCluster,
    cluster,  # noqa: F401
    env,  # noqa: F401
    launch,
    one_line_error,
    release,
    status,
    terminated,
)

from tests.conftest import run_cli

HYPERPOD = "cluster.use_hyperpod_pytorch_job=true"
CONTAINER = "pytorch-job-container"


def hyperpodjob(name: str, *conditions: str, retries: int = 5, **status_: Any) -> dict:
    return {
        "apiVersion": "sagemaker.amazonaws.com/v1",
        "kind": "HyperPodPyTorchJob",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "runPolicy": {"jobMaxRetryCount": retries, "restartPolicy": {"maxFullJobRestarts": 2}}
        },
        "status": {
            "conditions": [
                {"type": c, "status": "True", "reason": c, "message": f"job {c.lower()}"}
                for c in conditions
            ],
            **status_,
        },
    }


def hyperpod_pod(job: str, index: int, state: dict, **extra: Any) -> dict:
    name = f"{job}-pod-{index}"
    container = {"name": CONTAINER, "state": state, "restartCount": 0, **extra}
    return {
        "metadata": {"name": name, "namespace": NAMESPACE, "uid": f"uid-{name}",
                     "labels": {"HPJob": job}},
        "status": {"phase": "Running", "containerStatuses": [container]},
    }  # fmt: skip


def test_status_reads_the_hyperpod_job_and_its_restart_counts(
    env: Env, cluster: FakeCluster
) -> None:
    record = launch(env, cluster, HYPERPOD, "max_restarts=5")
    name = release(record)
    assert record["details"]["kind"] == "HyperPodPyTorchJob"
    cluster.jobs[name] = [
        hyperpodjob(
            name, "Created", "PodsRunning", "Running",
            restartCount=2,
            restartStatus={"fullJobRestartCount": 1, "restartCount": 2},
            latestFaultyPodInstanceList={"restartType": "PLR", "faultyPodList": [f"{name}-pod-1"]},
        )
    ]  # fmt: skip
    cluster.pods += [hyperpod_pod(name, 0, RUNNING), hyperpod_pod(name, 1, RUNNING)]
    got = status(env, record["job_id"])
    assert (got["state"], got["backend_state"]) == (
        "running",
        "restarting 2/5, full job restarts 1/2",
    )
    assert got["detail"] == f"last restart (process-level) for pod(s) {name}-pod-1"
    pods_call = (
        "GET",
        f"/api/v1/namespaces/{NAMESPACE}/pods",
        {"labelSelector": [f"HPJob={name}"]},
    )
    assert cluster.calls()[:2] == [
        ("GET", f"/apis/sagemaker.amazonaws.com/v1/namespaces/{NAMESPACE}/hyperpodpytorchjobs/"
                f"{name}", {}),
        pods_call,
    ]  # fmt: skip
    # Then the progress: the pods again, and the logs of this job's pods only.
    calls = cluster.calls()[2:]
    assert calls[0] == pods_call
    assert calls[1:] and all(
        path.startswith(f"/api/v1/namespaces/{NAMESPACE}/pods/{name}-") and path.endswith("/log")
        for _, path, _ in calls[1:]
    )
    plain = run_cli("status", record["job_id"], env=env.vars)
    assert "running (restarting 2/5, full job restarts 1/2)" in plain.stdout


def test_completed_and_failed_conditions_finish_the_job(env: Env, cluster: FakeCluster) -> None:
    record = launch(env, cluster, HYPERPOD)
    name = release(record)
    cluster.pods += [hyperpod_pod(name, 0, terminated(0))]
    cluster.jobs[name] = [hyperpodjob(name, "Created", "Running", "Completed")]
    got = status(env, record["job_id"])
    assert (got["state"], got["backend_state"], got["exit_code"]) == ("succeeded", "Completed", 0)
    cluster.jobs[name] = [hyperpodjob(name, "Created", "Running", "Failed")]
    cluster.pods[:] = [hyperpod_pod(name, 0, terminated(3))]
    got = status(env, record["job_id"])
    assert (got["state"], got["exit_code"]) == ("failed", 3)
    assert "job failed" in got["detail"]
    cluster.jobs[name] = [hyperpodjob(name, "Created", "Suspended")]
    assert status(env, record["job_id"])["state"] == "pending"


def test_logs_read_the_training_container_of_every_pod(env: Env, cluster: FakeCluster) -> None:
    record = launch(env, cluster, HYPERPOD)
    name = release(record)
    cluster.jobs[name] = [hyperpodjob(name, "Running")]
    cluster.pods += [hyperpod_pod(name, 0, RUNNING), hyperpod_pod(name, 1, RUNNING)]
    cluster.logs[f"{name}-pod-0"] = "[rank0]:step 0\n"
    cluster.logs[f"{name}-pod-1"] = "[rank8]:step 0\n"
    proc = run_cli("logs", record["job_id"], env=env.vars)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "[rank0]:step 0\n[rank8]:step 0\n"
    log_calls = [c for c in cluster.calls() if c[1].endswith("/log")]
    assert [c[2] for c in log_calls] == [{"container": [CONTAINER]}] * 2


def test_cancel_uninstalls_the_release_and_deletes_the_secret(
    env: Env, cluster: FakeCluster
) -> None:
    record = launch(env, cluster, HYPERPOD)
    name = release(record)
    secret = f"{name}-secrets"
    assert secret in cluster.secrets
    cluster.jobs[name] = [hyperpodjob(name, "Running")]
    proc = run_cli("cancel", record["job_id"], env=env.vars)
    assert proc.returncode == 0, proc.stderr
    assert f"helm uninstall {name}; deleted Secret {NAMESPACE}/{secret}" in proc.stdout
    _, uninstall = env.helm.calls()
    assert uninstall["argv"][:2] == ["uninstall", name]
    assert ("DELETE", f"/api/v1/namespaces/{NAMESPACE}/secrets/{secret}", {}) in cluster.calls()
    del cluster.jobs[name]
    assert status(env, record["job_id"])["state"] == "cancelled"
    assert json.loads((env.tmp / "results" / "allreduce-smoke" / "job.json").read_text())[
        "cancelled_at"
    ]


def test_a_cluster_without_the_hyperpod_operator_is_one_line(
    env: Env, cluster: FakeCluster
) -> None:
    record = launch(env, cluster, HYPERPOD)
    cluster.crd_installed = False
    line = one_line_error(run_cli("status", record["job_id"], env=env.vars))
    assert "no hyperpodpytorchjobs.sagemaker.amazonaws.com/v1 resource" in line
    assert "amazon-sagemaker-hyperpod-training-operator" in line
