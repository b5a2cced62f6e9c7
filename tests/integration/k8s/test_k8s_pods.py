"""The pods' side of the chart, run for real on this machine: two "pods" (Master + Worker)
execute the rendered ConfigMap's entrypoint.sh with the container env from the rendered
PyTorchJob plus what the training operator injects (MASTER_ADDR, MASTER_PORT, RANK,
WORLD_SIZE), and torchrun's c10d rendezvous joins them for a gloo all-reduce.

Only the pod paths are moved (into a temporary folder); the worker reaches the master at
127.0.0.1, standing in for the `<job>-master-0` Service name.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import time
from pathlib import Path

import k8s_schemas
import pytest

from hyperpod_launcher.backends.k8s import values as k8s_values
from hyperpod_launcher.launch.compose import plan
from tests.conftest import require, require_tool


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, master: subprocess.Popen[str], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if master.poll() is not None:
            raise AssertionError(f"the master pod exited early:\n{master.communicate()[0]}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    master.kill()
    raise AssertionError(f"the master pod's rendezvous store never listened on {port}")


def test_master_and_worker_pods_rendezvous_and_all_reduce(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require(importlib.util.find_spec("torch") is not None, "torch (torchrun)")
    helm = require_tool("helm")
    pod_root = tmp_path / "pod"
    paths = {k: str(pod_root / k) for k in ("scripts", "job", "code")}
    monkeypatch.setattr(k8s_values, "POD_PATHS", paths)
    result = tmp_path / "result.txt"
    marks = tmp_path
    the_plan = plan(
        (
            "cluster=k8s",
            "container=python:3.11-slim",
            f"base_results_dir={tmp_path / 'results'}",
            "training_cfg.run.nodes=2",
            "training_cfg.run.ntasks_per_node=1",
            f"training_cfg.script_args=[{{--steps:2}},{{--result-file:{result}}}]",
            f"cluster.pre_script=['echo pre on $HPL_REPLICA_TYPE > {marks}/pre-$HPL_REPLICA_TYPE']",
            f"cluster.post_script=['echo $HPL_TRAIN_EXIT_CODE > {marks}/post-$HPL_REPLICA_TYPE']",
        ),
        launch_id="pods",
    )
    objects, errors, _ = k8s_schemas.write_and_template(the_plan, helm)
    assert errors == []
    (job,) = [o for o in objects if o["kind"] == "PyTorchJob"]
    (scripts,) = [o for o in objects if o["metadata"]["name"].endswith("-scripts")]

    # The ConfigMap volume, mode 0755; each pod's emptyDir job folder.
    scripts_dir = Path(paths["scripts"])
    scripts_dir.mkdir(parents=True)
    for name, text in scripts["data"].items():
        (scripts_dir / name).write_text(text)
        (scripts_dir / name).chmod(0o755)
    Path(paths["job"]).mkdir()

    port = free_port()
    procs: dict[str, subprocess.Popen[str]] = {}
    replicas = job["spec"]["pytorchReplicaSpecs"]
    assert set(replicas) == {"Master", "Worker"}
    for kind in ("Master", "Worker"):
        replica = replicas[kind]
        if kind == "Worker":
            # On one machine 127.0.0.1 is also the worker's own address, so a worker that came
            # first would host a store of its own; in a cluster the Service name is the
            # master's. Start it once the master's store listens, as the operator's DNS would.
            wait_for_port(port, procs["Master"])
        (container,) = replica["template"]["spec"]["containers"]
        pod_env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
        operator_env = {  # what training-operator v1 sets in every pod of a job with a Master
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
            "WORLD_SIZE": "2",
            "RANK": "0" if kind == "Master" else "1",
            "PYTHONUNBUFFERED": "0",
        }
        assert container["ports"][0]["name"] == "pytorchjob-port"
        procs[kind] = subprocess.Popen(
            container["command"],
            env={**os.environ, **pod_env, **operator_env},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=tmp_path,
        )
    outputs = {}
    for kind, proc in procs.items():
        try:
            outputs[kind], _ = proc.communicate(timeout=180)
        except subprocess.TimeoutExpired:
            for other in procs.values():
                other.kill()
            raise
    for kind, proc in procs.items():
        assert proc.returncode == 0, f"{kind}:\n{outputs[kind]}"
    assert result.read_text() == "2 1\n"
    assert "all_reduce OK: world size 2" in outputs["Master"] + outputs["Worker"]
    for kind in ("master", "worker"):
        assert (tmp_path / f"pre-{kind}").read_text() == f"pre on {kind}\n"
        assert (tmp_path / f"post-{kind}").read_text() == "0\n"
