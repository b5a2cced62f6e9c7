"""max_restarts on Kubernetes: restartPolicy OnFailure + runPolicy.backoffLimit where the
cluster file leaves them null, contradictions refused, and a restarted container resuming.

The chart is rendered by the real helm and checked against the PyTorchJob CRD; the restart
itself runs the rendered entrypoint.sh twice in one "pod" (one job folder, as an emptyDir
outlives a container restart), with a script that fails on its first attempt.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
from pathlib import Path
from typing import Any

import k8s_schemas
import k8s_standins
import pytest
import yaml

from hyperpod_launcher.backends.k8s import values as k8s_values
from hyperpod_launcher.launch.compose import plan
from hyperpod_launcher.util.errors import UserError
from tests.conftest import REPO, require, require_tool, run_launcher

BASE = ("cluster=k8s", "container=public.ecr.aws/docker/library/python:3.11-slim")
FLAKY = REPO / "tests" / "fixtures" / "scripts" / "flaky.py"


def values(*overrides: str) -> dict[str, Any]:
    the_plan = plan([*BASE, *overrides])
    return yaml.safe_load(the_plan.request.files["k8s_template/values.yaml"].text)


@pytest.mark.parametrize(
    ("overrides", "restart", "backoff"),
    [
        ((), "Never", None),
        (("max_restarts=2",), "OnFailure", 2),
        (("max_restarts=2", "cluster.restartPolicy=ExitCode"), "ExitCode", 2),
        # backoffLimit counts pod restarts: a user may allow more than max_restarts.
        (("max_restarts=2", "cluster.backoffLimit=8"), "OnFailure", 8),
        (("cluster.restartPolicy=OnFailure", "cluster.backoffLimit=3"), "OnFailure", 3),
    ],
)
def test_max_restarts_sets_what_the_cluster_file_leaves_null(
    overrides: tuple[str, ...], restart: str, backoff: int | None
) -> None:
    got = values(*overrides)
    assert got["restartPolicy"] == restart
    assert got["runPolicy"].get("backoffLimit") == backoff


def test_the_rendered_job_restarts_on_failure_up_to_max_restarts(tmp_path: Path) -> None:
    helm = require_tool("helm")
    the_plan = plan(
        [*BASE, "max_restarts=2", "training_cfg.run.nodes=3", f"base_results_dir={tmp_path}"]
    )
    objects, errors, _ = k8s_schemas.write_and_template(the_plan, helm)
    assert errors == []
    (job,) = [o for o in objects if o["kind"] == "PyTorchJob"]
    assert job["spec"]["runPolicy"]["backoffLimit"] == 2
    replicas = job["spec"]["pytorchReplicaSpecs"]
    assert {k: r["restartPolicy"] for k, r in replicas.items()} == {
        "Master": "OnFailure",
        "Worker": "OnFailure",
    }


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ("max_restarts=2", "cluster.restartPolicy=Never"),
            "max_restarts=2 contradicts cluster.restartPolicy=Never (failed pods are never "
            "restarted); set cluster.restartPolicy=OnFailure or ExitCode, or null",
        ),
        (
            ("max_restarts=2", "cluster.backoffLimit=0"),
            "max_restarts=2 contradicts cluster.backoffLimit=0",
        ),
    ],
)
def test_a_contradiction_is_one_line_exit_2_and_nothing_written(
    overrides: tuple[str, ...], message: str, tmp_path: Path
) -> None:
    helm = k8s_standins.fake_helm(tmp_path)
    results = tmp_path / "results"
    proc = run_launcher(*BASE, *overrides, f"base_results_dir={results}", env=helm.env())
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
    assert not results.exists()
    assert helm.calls() == []


def test_restarts_helper_refuses_a_negative_backoff_limit() -> None:
    with pytest.raises(UserError, match=r"cluster\.backoffLimit=-1: expected 0 or more"):
        plan([*BASE, "max_restarts=1", "cluster.backoffLimit=-1"])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_restarted_container_counts_its_attempts_and_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require(importlib.util.find_spec("torch") is not None, "torch (torchrun)")
    helm = require_tool("helm")
    pod_root = tmp_path / "pod"
    paths = {k: str(pod_root / k) for k in ("scripts", "job", "code")}
    monkeypatch.setattr(k8s_values, "POD_PATHS", paths)
    the_plan = plan(
        [
            *BASE,
            "max_restarts=1",
            f"base_results_dir={tmp_path / 'results'}",
            "training_cfg.run.ntasks_per_node=1",
            f"training_cfg.entry_script={FLAKY}",
        ]
    )
    objects, _, _ = k8s_schemas.write_and_template(the_plan, helm)
    (job,) = [o for o in objects if o["kind"] == "PyTorchJob"]
    (scripts,) = [o for o in objects if o["metadata"]["name"].endswith("-scripts")]
    scripts_dir = Path(paths["scripts"])
    scripts_dir.mkdir(parents=True)
    for name, text in scripts["data"].items():
        (scripts_dir / name).write_text(text)
        (scripts_dir / name).chmod(0o755)
    Path(paths["job"]).mkdir()  # the pod's emptyDir: kept across container restarts

    master = job["spec"]["pytorchReplicaSpecs"]["Master"]
    assert master["restartPolicy"] == "OnFailure"
    (container,) = master["template"]["spec"]["containers"]
    pod_env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    runs = []
    for _ in range(2):  # the first attempt, then the kubelet's restart of the container
        operator_env = {
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(free_port()),
            "WORLD_SIZE": "1",
            "RANK": "0",
        }
        runs.append(
            subprocess.run(
                container["command"],
                env={**os.environ, **pod_env, **operator_env},
                capture_output=True,
                text=True,
                cwd=tmp_path,
                timeout=180,
                check=False,
            )
        )
    first, second = runs
    assert first.returncode != 0 and "attempt 0" in first.stdout, first.stdout + first.stderr
    assert second.returncode == 0, second.stdout + second.stderr
    assert "attempt 1" in second.stdout and "resumed after a restart" in second.stdout
