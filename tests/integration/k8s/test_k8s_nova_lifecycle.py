"""`status`, `logs` and `cancel` of Amazon Nova jobs, against the recording API stand-in.

Nova jobs are launched with the real launcher (the recording helm on PATH). A single-job recipe
is one PyTorchJob named like its release; a PPO release installs one PyTorchJob per training
service and a generation StatefulSet, and its actor-training job stands for the run: status and
logs follow it, cancel uninstalls the whole release.
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
    pod,
    pytorchjob,
    release,
    status,
)

from tests.conftest import run_cli, run_launcher

SFT = ("fine-tuning/nova/nova_micro_p5_gpu_sft", "my-fullrank-run")
PPO = ("fine-tuning/nova/nova_micro_p5_gpu_ppo", "my-ppo-run")
JOBS = f"/apis/kubeflow.org/v1/namespaces/{NAMESPACE}/pytorchjobs"


def launch_nova(env: Env, cluster: FakeCluster, recipe: tuple[str, str]) -> dict[str, Any]:
    proc = run_launcher(
        f"recipes={recipe[0]}",
        "cluster=k8s",
        "container=708977205387.dkr.ecr.us-east-1.amazonaws.com/nova-fine-tune-repo:test",
        f"base_results_dir={env.tmp / 'results'}",
        f"cluster.namespace={NAMESPACE}",
        "cluster.kube_context=test-ctx",
        env=env.vars,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    record = json.loads((env.tmp / "results" / recipe[1] / "job.json").read_text())
    cluster.requests.clear()
    return record


def test_a_nova_job_is_followed_and_cancelled_like_any_k8s_job(
    env: Env, cluster: FakeCluster
) -> None:
    record = launch_nova(env, cluster, SFT)
    name = release(record)
    assert "job_name" not in record["details"] and "secret" not in record["details"]
    (install,) = env.helm.calls()
    assert install["argv"][:2] == ["install", name]
    cluster.jobs[name] = [pytorchjob(name, ("Created", ""), ("Running", ""))]
    cluster.pods += [pod(name, "master", 0, "Running", RUNNING)]
    cluster.logs[f"{name}-master-0"] = "epoch 1\n"
    assert status(env, record["job_id"])["state"] == "running"
    assert ("GET", f"{JOBS}/{name}", {}) in cluster.calls()
    logs = run_cli("logs", record["job_id"], env=env.vars)
    assert (logs.returncode, logs.stdout) == (0, "epoch 1\n"), logs.stderr

    proc = run_cli("cancel", record["name"], env=env.vars)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == (
        f"cancelled k8s job {NAMESPACE}/{name}: helm uninstall {name} "
        "(the job and its pods are being deleted)"
    )
    assert env.helm.calls()[-1]["argv"] == [
        "uninstall", name, "--namespace", NAMESPACE, "--kube-context", "test-ctx",
    ]  # fmt: skip


def test_a_ppo_run_follows_its_actor_training_job_and_cancels_the_release(
    env: Env, cluster: FakeCluster
) -> None:
    record = launch_nova(env, cluster, PPO)
    name = release(record)
    trainer = f"{name}-at"
    assert record["details"]["job_name"] == trainer
    assert record["job_id"] == f"{NAMESPACE}/{name}"
    cluster.jobs[trainer] = [pytorchjob(trainer, ("Created", ""), ("Succeeded", "done"))]
    cluster.pods += [pod(trainer, "master", 0, "Succeeded", RUNNING)]
    cluster.logs[f"{trainer}-master-0"] = "ppo step 1\n"
    got = status(env, record["job_id"])
    assert got["state"] == "succeeded"
    assert ("GET", f"{JOBS}/{trainer}", {}) in cluster.calls()
    assert not any(c[1].endswith(f"/pytorchjobs/{name}") for c in cluster.calls())
    logs = run_cli("logs", record["job_id"], env=env.vars)
    assert (logs.returncode, logs.stdout) == (0, "ppo step 1\n"), logs.stderr

    cluster.jobs[trainer] = [pytorchjob(trainer, ("Created", ""), ("Running", ""))]
    proc = run_cli("cancel", record["job_id"], env=env.vars)
    assert proc.returncode == 0, proc.stderr
    assert f"helm uninstall {name} " in proc.stdout
    assert env.helm.calls()[-1]["argv"][:2] == ["uninstall", name]
