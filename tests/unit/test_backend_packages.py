"""Each backend is one package under hyperpod_launcher/backends/: its modules import alone,
checking a cluster file loads neither its renderer nor an SDK, and no module name shadows a
top-level package (the SageMaker dry run runs a script from its package folder)."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import pkgutil
import re
import subprocess
import sys

import pytest

import hyperpod_launcher.backends
from hyperpod_launcher import backends
from tests.conftest import REPO

# The layout docs/development.md and CONTRIBUTING.md describe.
MODULES = (
    "hyperpod_launcher.backends.base",
    "hyperpod_launcher.backends.slurm.backend",
    "hyperpod_launcher.backends.slurm.options",
    "hyperpod_launcher.backends.slurm.preflight",
    "hyperpod_launcher.backends.k8s.backend",
    "hyperpod_launcher.backends.k8s.chart_schema",
    "hyperpod_launcher.backends.k8s.hyperpod",
    "hyperpod_launcher.backends.k8s.jobs",
    "hyperpod_launcher.backends.k8s.options",
    "hyperpod_launcher.backends.k8s.preflight",
    "hyperpod_launcher.backends.k8s.secret",
    "hyperpod_launcher.backends.k8s.values",
    "hyperpod_launcher.backends.sm_jobs.backend",
    "hyperpod_launcher.backends.sm_jobs.checks",
    "hyperpod_launcher.backends.sm_jobs.defaults",
    "hyperpod_launcher.backends.sm_jobs.jobs",
    "hyperpod_launcher.backends.sm_jobs.options",
    "hyperpod_launcher.backends.sm_jobs.preflight",
    "hyperpod_launcher.backends.sm_jobs.plan",
    "hyperpod_launcher.backends.sm_jobs.preview",
    "hyperpod_launcher.backends.sm_jobs.runner",
    "hyperpod_launcher.backends.local.backend",
    "hyperpod_launcher.backends.local.options",
    "hyperpod_launcher.config.schema",
)
SDKS = ("boto3", "botocore", "kubernetes", "sagemaker")


def _discovered() -> set[str]:
    package = hyperpod_launcher.backends
    return {m.name for m in pkgutil.walk_packages(package.__path__, package.__name__ + ".")} | {
        package.__name__
    }


def _imported_by(code: str) -> set[str]:
    proc = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport json, sys; print(json.dumps(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return set(json.loads(proc.stdout.splitlines()[-1]))


def test_the_documented_layout_exists() -> None:
    missing = {m for m in MODULES if m.startswith("hyperpod_launcher.backends.")} - _discovered()
    assert not missing


@pytest.mark.parametrize("module", sorted(_discovered() | set(MODULES)))
def test_each_module_imports_alone(module: str) -> None:
    """A fresh interpreter imports it first: an import cycle or a missing import fails here."""
    assert module in _imported_by(f"import {module}")


@pytest.mark.parametrize("name", backends.names())
def test_checking_a_cluster_file_loads_no_renderer_or_sdk(name: str) -> None:
    imported = _imported_by(
        f"from hyperpod_launcher import backends\nbackends.options_schema({name!r})"
    )
    options = backends.entry(name).options.split(":")[0]
    backend = backends.entry(name).backend.split(":")[0]
    assert options in imported
    assert backend not in imported
    assert "jinja2" not in imported
    assert not [m for m in imported if m.split(".")[0] in SDKS]


@pytest.mark.parametrize("name", backends.names())
def test_loading_a_backend_loads_no_sdk(name: str) -> None:
    imported = _imported_by(f"from hyperpod_launcher import backends\nbackends.get({name!r})")
    assert not [m for m in imported if m.split(".")[0] in SDKS]


def test_no_backend_module_shadows_a_top_level_package() -> None:
    """Running a file of a package folder as a script puts that folder first on sys.path, so a
    module there named like an installed package (e.g. the SDK's `sagemaker`) would hide it."""
    leaves = {m.rsplit(".", 1)[-1] for m in _discovered()}
    shadowing = sorted(leaf for leaf in leaves if importlib.util.find_spec(leaf) is not None)
    assert not shadowing


def _core_sources() -> dict[str, str]:
    package = REPO / "hyperpod_launcher"
    return {
        str(path.relative_to(REPO)): path.read_text()
        for path in package.rglob("*.py")
        if not {"backends", "examples"} & set(path.relative_to(package).parts)
    }


def test_core_code_names_no_backend_or_its_keys() -> None:
    """Outside backends/, code asks the registry (`runs_here`, `required_defaults`, the options
    classes) instead of naming a backend or one of its cluster keys."""
    own_keys = {
        name: {f.name for f in dataclasses.fields(backends.options_schema(name))}
        for name in backends.names()
    }
    shared = set.intersection(*own_keys.values())
    patterns = [re.compile(rf"""["']{name}["']""") for name in backends.names()]
    patterns += [
        re.compile(rf"cluster\.{re.escape(key)}\b")
        for keys in own_keys.values()
        for key in keys - shared
    ]
    found = [
        f"{path}:{number}: {line.strip()}"
        for path, text in _core_sources().items()
        for number, line in enumerate(text.splitlines(), 1)
        if any(p.search(line) for p in patterns)
    ]
    # config.yaml's default cluster is HyperPod's; it names the backend by design.
    assert [f for f in found if "DEFAULT_CLUSTER =" not in f] == []


def test_backends_print_nothing_the_cli_prints() -> None:
    """Backends return statuses and yield log lines (notes as `logfiles.Note`); the CLI prints.
    The SageMaker runner and preview run as scripts of their own in the job folder."""
    scripts = {"runner.py", "preview.py"}
    package = REPO / "hyperpod_launcher" / "backends"
    printing = [
        str(path.relative_to(REPO))
        for path in package.rglob("*.py")
        if path.name not in scripts and re.search(r"\bprint\(", path.read_text())
    ]
    assert printing == []
