"""Backends read typed options: the cluster section reaches a backend as an instance of the
class its registry entry names (nested sections too), keys a cluster file leaves out take the
schema's default, and no backend reads its options by string key (where a typo is silent)."""

from __future__ import annotations

import re

import pytest

from hyperpod_launcher import backends
from hyperpod_launcher.backends.k8s import values
from hyperpod_launcher.backends.k8s.options import K8sLabelSelector, K8sOptions
from hyperpod_launcher.backends.slurm.options import SlurmDockerConfig
from hyperpod_launcher.backends.sm_jobs.options import (
    SmInputs,
    SmJobsConfig,
    SmJobsOptions,
    SmS3Inputs,
)
from hyperpod_launcher.config.validate import typed
from hyperpod_launcher.launch.compose import plan
from tests.conftest import REPO

CUSTOM = (
    f"training_cfg.entry_script={REPO / 'hyperpod_launcher/examples/allreduce_smoke.py'}",
    "training_cfg.run.name=typed",
)
LAUNCH = {
    "slurm": ("cluster=slurm", *CUSTOM),
    "local": ("cluster=local", *CUSTOM),
    "k8s": ("cluster=k8s", "container=example.com/train:1", *CUSTOM),
    "sm_jobs": (
        "cluster=sm_jobs",
        "instance_type=ml.c5.2xlarge",
        "cluster.sm_jobs_config.output_path=s3://bucket/jobs",
        "cluster.sm_jobs_config.role=arn:aws:iam::123456789012:role/r",
        *CUSTOM,
    ),
}


def test_every_registered_backend_is_covered() -> None:
    assert set(LAUNCH) == set(backends.names())


NESTED = {
    "slurm": ("slurm_docker_cfg", SlurmDockerConfig),
    "k8s": ("label_selector", K8sLabelSelector),
    "sm_jobs": ("sm_jobs_config", SmJobsConfig),
}


@pytest.mark.parametrize("name", sorted(LAUNCH))
def test_a_backend_gets_an_instance_of_its_options(name: str) -> None:
    opts = plan(LAUNCH[name]).spec.opts
    assert type(opts) is backends.options_schema(name)
    if name in NESTED:
        field, section = NESTED[name]
        assert type(getattr(opts, field)) is section


def test_nested_sections_become_their_dataclasses() -> None:
    opts = typed({"sm_jobs_config": {"inputs": {"s3": {"train": "s3://b/t"}}}}, SmJobsOptions)
    assert isinstance(opts.sm_jobs_config.inputs, SmInputs)
    assert opts.sm_jobs_config.inputs.s3 == SmS3Inputs(train="s3://b/t")
    assert opts.sm_jobs_config.wait is False  # the schema's default
    with pytest.raises(AttributeError):
        opts.sm_jobs_config.wiat  # noqa: B018 - a misspelt field fails instead of reading None


def test_a_key_the_cluster_file_leaves_out_takes_the_schema_default() -> None:
    spec = plan([*LAUNCH["k8s"], "~cluster.rdzv_port", "~cluster.pullPolicy"]).spec
    chart = values.build(spec)
    assert chart.values["rdzvPort"] == K8sOptions.rdzv_port == 23456
    assert chart.values["imagePullPolicy"] == K8sOptions.pullPolicy


def test_no_backend_reads_its_options_by_string_key() -> None:
    reads = re.compile(r"""opts\b\)?\s*(\.get\(|\[\s*["'])|\.get\(\s*["']sm_jobs_config""")
    found = [
        f"{path.relative_to(REPO)}:{number}: {line.strip()}"
        for path in sorted((REPO / "hyperpod_launcher" / "backends").rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if reads.search(line)
    ]
    assert not found
