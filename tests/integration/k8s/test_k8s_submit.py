"""The submit path, end to end through `python main.py ... cluster=k8s`.

helm is a recording stand-in on PATH (argv, env, exit code, stderr passthrough); the
Kubernetes API is a recording stand-in on 127.0.0.1 behind a kubeconfig, and sees the one
call that carries tokens (the Secret). Dry runs use the real helm. An opt-in test talks to a
real cluster when KUBECONFIG is set.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shlex
import subprocess
from pathlib import Path

import k8s_schemas
import k8s_standins
import pytest
import yaml

from tests.conftest import require, require_tool, run_launcher
from tests.https_serving import HOSTS, certificate, files_handler, https_server

IMAGE = "container=public.ecr.aws/docker/library/python:3.11-slim"
HF_TOKEN = "hf_SubmitTestNotReal0123456789"
GIT_TOKEN = "ghp_SubmitTestNotReal0123456789"
CUSTOM = ("cluster=k8s", IMAGE)


def everything_written(folder: Path) -> str:
    return "".join(p.read_text(errors="replace") for p in folder.rglob("*") if p.is_file())


def record(job_dir: Path) -> dict:
    return json.loads((job_dir / "job.json").read_text())


@pytest.fixture
def helm(tmp_path: Path) -> k8s_standins.FakeHelm:
    return k8s_standins.fake_helm(tmp_path)


@pytest.fixture
def api(tmp_path: Path):
    require(importlib.util.find_spec("kubernetes") is not None, "the kubernetes Python client")
    with k8s_standins.api_server() as server:
        config = k8s_standins.kubeconfig(
            tmp_path / "kubeconfig",
            {"unreachable": "http://127.0.0.1:9", "test-ctx": server.url},
            current="test-ctx",
        )
        server.kubeconfig = str(config)  # type: ignore[attr-defined]
        yield server


def test_submit_creates_the_secret_then_installs_with_the_exact_argv(
    tmp_path: Path, helm: k8s_standins.FakeHelm, api: k8s_standins.ApiServer
) -> None:
    env = {
        **helm.env(stdout="NAME: x\nSTATUS: deployed\n"),
        "KUBECONFIG": api.kubeconfig,  # type: ignore[attr-defined]
        "HPL_TEST_HF": HF_TOKEN,
    }
    proc = run_launcher(
        *CUSTOM,
        f"base_results_dir={tmp_path / 'results'}",
        "cluster.namespace=team-a",
        "cluster.kube_context=test-ctx",
        "+env_vars.HF_TOKEN=${oc.env:HPL_TEST_HF}",
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    job_dir = tmp_path / "results" / "allreduce-smoke"
    rec = record(job_dir)
    argv = shlex.split(rec["submit"]["command"])
    release = argv[2]
    assert argv == [
        "helm", "install", release, str(job_dir / "launches" / rec["launch_id"] / "k8s_template"),
        "--namespace", "team-a", "--kube-context", "test-ctx",
    ]  # fmt: skip
    (call,) = helm.calls()
    assert call["argv"] == argv[1:]
    assert rec["submit"]["status"] == "submitted"
    assert rec["job_id"] == f"team-a/{release}"
    assert rec["details"]["secret"] == {"name": f"{release}-secrets", "action": "created"}
    assert f"submitted k8s job team-a/{release}" in proc.stdout

    (create,) = api.requests
    assert create["method"] == "POST"
    assert create["path"] == "/api/v1/namespaces/team-a/secrets"
    assert create["authorization"] == "Bearer token-for-test-ctx"
    assert create["body"]["metadata"]["name"] == f"{release}-secrets"
    assert create["body"]["stringData"] == {"HF_TOKEN": HF_TOKEN}
    assert create["body"]["type"] == "Opaque"

    # The token went to the API server only: not into files, output, helm's argv or an env
    # var the launcher added (HPL_TEST_HF is the user's own variable).
    assert HF_TOKEN not in everything_written(job_dir)
    assert HF_TOKEN not in proc.stdout + proc.stderr
    assert HF_TOKEN not in " ".join(call["argv"])
    assert [k for k, v in call["env"].items() if HF_TOKEN in v] == ["HPL_TEST_HF"]
    values = yaml.safe_load((job_dir / "k8s_template" / "values.yaml").read_text())
    assert values["secretName"] == f"{release}-secrets"
    assert values["secretEnv"] == [{"name": "HF_TOKEN", "key": "HF_TOKEN"}]


def test_an_existing_secret_is_updated(
    tmp_path: Path, helm: k8s_standins.FakeHelm, api: k8s_standins.ApiServer
) -> None:
    api.existing.add("shared-tokens")
    env = {**helm.env(), "KUBECONFIG": api.kubeconfig, "HPL_TEST_HF": HF_TOKEN}  # type: ignore[attr-defined]
    proc = run_launcher(
        *CUSTOM,
        f"base_results_dir={tmp_path}",
        "cluster.secret_name=shared-tokens",
        "+env_vars.HF_TOKEN=${oc.env:HPL_TEST_HF}",
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert [(r["method"], r["path"]) for r in api.requests] == [
        ("POST", "/api/v1/namespaces/default/secrets"),
        ("PUT", "/api/v1/namespaces/default/secrets/shared-tokens"),
    ]
    assert api.requests[1]["body"]["stringData"] == {"HF_TOKEN": HF_TOKEN}
    assert record(tmp_path / "allreduce-smoke")["details"]["secret"]["action"] == "updated"


def test_failed_helm_exits_1_with_its_stderr_keeps_the_chart_and_removes_the_new_secret(
    tmp_path: Path, helm: k8s_standins.FakeHelm, api: k8s_standins.ApiServer
) -> None:
    stderr = "Error: INSTALLATION FAILED: the server could not find the requested resource\n"
    env = {
        **helm.env(exit_code=1, stderr=stderr),
        "KUBECONFIG": api.kubeconfig,  # type: ignore[attr-defined]
        "HPL_TEST_HF": HF_TOKEN,
    }
    proc = run_launcher(
        *CUSTOM, f"base_results_dir={tmp_path}", "+env_vars.HF_TOKEN=${oc.env:HPL_TEST_HF}", env=env
    )
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: helm install failed (exit 1): Error: INSTALLATION FAILED")
    job_dir = tmp_path / "allreduce-smoke"
    assert (job_dir / "k8s_template" / "Chart.yaml").is_file()
    assert record(job_dir)["submit"]["status"] == "failed"
    assert [r["method"] for r in api.requests] == ["POST", "DELETE"]
    release = shlex.split(record(job_dir)["submit"]["command"])[2]
    assert api.requests[1]["path"] == f"/api/v1/namespaces/default/secrets/{release}-secrets"


def test_without_tokens_no_secret_and_no_api_call(
    tmp_path: Path, helm: k8s_standins.FakeHelm, api: k8s_standins.ApiServer
) -> None:
    env = {**helm.env(), "KUBECONFIG": str(tmp_path / "no-such-kubeconfig")}
    proc = run_launcher(*CUSTOM, f"base_results_dir={tmp_path}", env=env)
    assert proc.returncode == 0, proc.stderr
    assert api.requests == []
    assert len(helm.calls()) == 1
    values = yaml.safe_load((tmp_path / "allreduce-smoke/k8s_template/values.yaml").read_text())
    assert values["secretName"] is None and values["secretEnv"] == []


def test_git_code_is_pinned_and_its_token_goes_to_the_secret_only(
    tmp_path: Path, helm: k8s_standins.FakeHelm, api: k8s_standins.ApiServer
) -> None:
    require_tool("git")
    work = tmp_path / "work"
    work.mkdir()
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q", "-b", "main", str(work)], check=True)
    (work / "train.py").write_text("print('hello')\n")
    subprocess.run([*git, "-C", str(work), "add", "train.py"], check=True)
    subprocess.run([*git, "-C", str(work), "commit", "-q", "-m", "one"], check=True)
    sha = subprocess.run(
        ["git", "-C", str(work), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    served = tmp_path / "srv"
    served.mkdir()
    subprocess.run(
        ["git", "clone", "-q", "--bare", str(work), str(served / "train.git")], check=True
    )
    subprocess.run(["git", "-C", str(served / "train.git"), "update-server-info"], check=True)
    cert, key = certificate(tmp_path)  # a token goes over https only
    with https_server(files_handler(served), HOSTS[0], cert, key) as url:
        env = {**helm.env(), "KUBECONFIG": api.kubeconfig, "HPL_TEST_GIT": GIT_TOKEN}  # type: ignore[attr-defined]
        env["GIT_SSL_CAINFO"] = str(cert)
        proc = run_launcher(
            *CUSTOM,
            f"base_results_dir={tmp_path / 'results'}",
            f"git.repo_url_or_path={url}/train.git",
            "git.branch=main",
            "git.token=${oc.env:HPL_TEST_GIT}",
            "training_cfg.entry_script=train.py",
            env=env,
        )
    assert proc.returncode == 0, proc.stderr
    job_dir = tmp_path / "results" / "train"  # a custom script's run is named after it
    values = yaml.safe_load((job_dir / "k8s_template" / "values.yaml").read_text())
    assert values["code"]["commit"] == sha
    assert values["code"]["repo"] == f"{url}/train.git"
    assert record(job_dir)["resolved_commit"] == sha
    # helm was given the pinned commit in the values it installed: render ran after the checkout.
    assert yaml.safe_load(helm.calls()[0]["values"])["code"]["commit"] == sha
    (create,) = api.requests
    assert create["body"]["stringData"] == {"HPL_GIT_TOKEN": GIT_TOKEN}
    assert GIT_TOKEN not in everything_written(job_dir) + proc.stdout + proc.stderr
    assert GIT_TOKEN not in " ".join(helm.calls()[0]["argv"])
    assert [k for k, v in helm.calls()[0]["env"].items() if GIT_TOKEN in v] == ["HPL_TEST_GIT"]


def test_dry_run_writes_the_chart_and_the_manifests_helm_renders(tmp_path: Path) -> None:
    helm = require_tool("helm")
    proc = run_launcher(
        *CUSTOM,
        f"base_results_dir={tmp_path}",
        "dry_run=true",
        env={"PATH": f"{Path(helm).parent}{os.pathsep}{os.environ['PATH']}"},
    )
    assert proc.returncode == 0, proc.stderr
    job_dir = tmp_path / "allreduce-smoke"
    argv = shlex.split(record(job_dir)["submit"]["command"])
    assert f"submit with: {shlex.join(argv)}" in proc.stdout
    manifests = (job_dir / "manifests.yaml").read_text()
    template = subprocess.run(
        [helm, "template", argv[2], argv[3], "--namespace", "default",
         "--api-versions", "kubeflow.org/v1"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert manifests.split("\n", 1)[1] == template
    objects, errors = k8s_schemas.manifest_errors(manifests)
    assert errors == [] and {o["kind"] for o in objects} == {"PyTorchJob", "ConfigMap"}
    assert "manifests.yaml" in record(job_dir)["artifacts"]
    assert record(job_dir)["submit"]["status"] == "dry_run"


def test_dry_run_without_helm_writes_the_chart_and_says_why_manifests_are_missing(
    tmp_path: Path,
) -> None:
    proc = run_launcher(
        *CUSTOM, f"base_results_dir={tmp_path}", "dry_run=true", env={"PATH": str(tmp_path)}
    )
    assert proc.returncode == 0, proc.stderr
    job_dir = tmp_path / "allreduce-smoke"
    assert (job_dir / "k8s_template" / "values.yaml").is_file()
    assert not (job_dir / "manifests.yaml").exists()
    assert "manifests.yaml skipped: helm not found on PATH: install Helm" in proc.stdout
    assert "submit with: helm install " in proc.stdout


def test_missing_helm_exits_1_in_one_line_and_keeps_the_chart(tmp_path: Path) -> None:
    proc = run_launcher(*CUSTOM, f"base_results_dir={tmp_path}", env={"PATH": str(tmp_path)})
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "helm not found on PATH: install Helm" in lines[0]
    assert "scripts/install_helm.sh" in lines[0]
    job_dir = tmp_path / "allreduce-smoke"
    assert (job_dir / "k8s_template" / "Chart.yaml").is_file()
    assert record(job_dir)["submit"]["status"] == "failed"


def test_against_a_real_cluster_when_kubeconfig_is_set(tmp_path: Path) -> None:
    """Opt-in: with KUBECONFIG pointing at a real cluster (training operator installed), the
    launcher's exact install argv passes `helm install --dry-run=server` (the API server
    validates every object, the PyTorchJob against the installed CRD). Installs nothing."""
    if not os.environ.get("KUBECONFIG"):
        pytest.skip("opt-in: set KUBECONFIG to a real cluster with the Kubeflow training operator")
    helm = require_tool("helm")
    proc = run_launcher(
        *CUSTOM,
        f"base_results_dir={tmp_path}",
        "dry_run=true",
        f"cluster.namespace={os.environ.get('HPL_K8S_NAMESPACE', 'default')}",
        env={"PATH": f"{Path(helm).parent}{os.pathsep}{os.environ['PATH']}"},
    )
    assert proc.returncode == 0, proc.stderr
    argv = shlex.split(record(tmp_path / "allreduce-smoke")["submit"]["command"])
    server = subprocess.run(
        [helm, *argv[1:], "--dry-run=server"], capture_output=True, text=True, check=False
    )
    assert server.returncode == 0, server.stderr
