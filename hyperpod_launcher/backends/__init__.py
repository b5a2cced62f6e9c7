"""The backend registry: one entry per backend, the only place outside a backend that names it.

Everything else derives from it: what `cluster=` and `cluster_type` accept, which options
schema checks the cluster file, what the catalog-wide dry run renders, and which backend answers
`jobs`/`status`/`logs`/`cancel`. Entries name code as "module:Name" strings, imported on first
use, so no SDK loads before a backend that needs it runs. The cluster file itself is
`recipes_collection/cluster/<name>.yaml` (or `<name>.yaml` in a `--config-dir`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from hyperpod_launcher.util import lazy

if TYPE_CHECKING:
    from hyperpod_launcher.backends.base import Backend


@dataclass(frozen=True)
class Entry:
    backend: str  # "module:Class" of a backends.base.Backend subclass
    options: str  # "module:Class" of the dataclass listing the cluster file's keys
    catalog_overrides: tuple[str, ...] = ()  # what a catalog-wide dry run adds (no real cluster)
    # "module:NAME" of the required.BackendDefaults this backend fills missing values with
    required_defaults: str = "hyperpod_launcher.spec.required:JOB_FOLDER_DEFAULTS"
    runs_here: bool = False  # the job runs on this machine: its GPUs are the job's hardware
    # stacks that run only on the backends naming them here (Nova: AWS's EKS images)
    own_stacks: tuple[str, ...] = ()
    # (prefix, replacement) of the catalog's placeholder paths, where its jobs see other paths
    catalog_paths: tuple[tuple[str, str], ...] = ()


_REGISTRY: dict[str, Entry] = {
    "slurm": Entry(
        "hyperpod_launcher.backends.slurm.backend:SlurmBackend",
        "hyperpod_launcher.backends.slurm.options:SlurmOptions",
    ),
    "local": Entry(
        "hyperpod_launcher.backends.local.backend:LocalBackend",
        "hyperpod_launcher.backends.local.options:LocalOptions",
        runs_here=True,
    ),
    "sm_jobs": Entry(
        "hyperpod_launcher.backends.sm_jobs.backend:SageMakerBackend",
        "hyperpod_launcher.backends.sm_jobs.options:SmJobsOptions",
        (
            "cluster.sm_jobs_config.output_path=s3://hyperpod-launcher-catalog/output",
            "+cluster.sm_jobs_config.secrets.secrets_manager.HF_TOKEN=catalog/hf-token",
            "instance_type=ml.c5.2xlarge",  # custom-script examples; recipes bring their own
        ),
        "hyperpod_launcher.backends.sm_jobs.defaults:REQUIRED_DEFAULTS",
        catalog_paths=(("/fsx/exp", "/opt/ml/checkpoints"), ("/fsx/", "/opt/ml/input/data/train/")),
    ),
    "k8s": Entry(
        "hyperpod_launcher.backends.k8s.backend:K8sBackend",
        "hyperpod_launcher.backends.k8s.options:K8sOptions",
        (
            "container=public.ecr.aws/hyperpod-launcher/train:catalog",
            "+cluster.persistent_volume_claims=[{claimName:fsx-claim,mountPath:/fsx}]",
        ),
        "hyperpod_launcher.backends.k8s.defaults:REQUIRED_DEFAULTS",
        own_stacks=("nova",),
    ),
}


def register(name: str, entry: Entry) -> None:
    """Add a backend that lives outside this package (a plugin, a test's toy backend)."""
    _REGISTRY[name] = entry


def entry(name: str) -> Entry:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise NotImplementedError(f"the {name!r} backend is not available") from None


def get(name: str) -> Backend:
    return lazy.load(entry(name).backend)()


def options_schema(name: str) -> type:
    return lazy.load(entry(name).options)


def runs_here(name: str | None) -> bool:
    return name in _REGISTRY and _REGISTRY[name].runs_here


def runs_stack(stack: str) -> tuple[str, ...]:
    """The backends a stack runs on: all of them, unless some name it as their own."""
    owners = tuple(name for name, e in _REGISTRY.items() if stack in e.own_stacks)
    return owners or names()


def names() -> tuple[str, ...]:
    """The registered backends (what `cluster=` can select and catalog-wide checks cover)."""
    return tuple(_REGISTRY)
