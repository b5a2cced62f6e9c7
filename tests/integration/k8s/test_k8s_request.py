"""Kubernetes: what a dry run prints is what submit sends — the helm command, the values it
installs and the Secret it creates first.

helm is the recording stand-in on PATH (it keeps the values.yaml it was given); the Kubernetes
API is the recording stand-in on 127.0.0.1 (the Secret's one request).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import k8s_standins
import pytest

from hyperpod_launcher.launch import compose
from hyperpod_launcher.launch import execute as launch
from tests.conftest import require

HF_TOKEN = "hf_RequestTestNotReal0123456789"
LAUNCH_ID = "20261202-010203-cafe"
VALUES = "k8s_template/values.yaml"


def test_dry_run_prints_exactly_what_helm_and_the_api_receive(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require(importlib.util.find_spec("kubernetes") is not None, "the kubernetes Python client")
    helm = k8s_standins.fake_helm(tmp_path)
    with k8s_standins.api_server() as api:
        kubeconfig = k8s_standins.kubeconfig(
            tmp_path / "kubeconfig", {"test-ctx": api.url}, current="test-ctx"
        )
        env = {**helm.env(), "KUBECONFIG": str(kubeconfig), "HPL_TEST_HF": HF_TOKEN}
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        overrides = [
            "cluster=k8s",
            "container=public.ecr.aws/docker/library/python:3.11-slim",
            f"base_results_dir={tmp_path / 'results'}",
            "cluster.namespace=team-a",
            "+env_vars.HF_TOKEN=${oc.env:HPL_TEST_HF}",
        ]
        dry = compose.plan([*overrides, "dry_run=true"], launch_id=LAUNCH_ID)
        real = compose.plan(overrides, launch_id=LAUNCH_ID)
        assert real.request == dry.request

        printed: list[str] = []
        assert launch.execute(dry, ["main.py"], say=printed.append) == 0
        assert str(dry) in printed
        assert f"Secret team-a/{real.request.secret.name}" in str(dry)  # type: ignore[attr-defined]
        assert HF_TOKEN not in "\n".join(printed)

        assert launch.execute(real, ["main.py"], say=printed.append) == 0
        (call,) = [c for c in helm.calls() if c["argv"][:1] == ["install"]]
    assert call["argv"] == list(dry.request.submit_argv[1:])
    assert call["values"] == dry.request.files[VALUES].text
    assert Path(real.spec.job_dir, VALUES).read_text() == call["values"]  # nothing rewrote it
    (create,) = api.requests
    assert create["body"]["metadata"]["name"] == dry.request.secret.name  # type: ignore[attr-defined]
    assert create["body"]["stringData"] == {"HF_TOKEN": HF_TOKEN}
