"""Backend registry: name -> "module:Class", imported on first use so no SDK loads early."""

from __future__ import annotations

from hyperpod_launcher import lazy
from hyperpod_launcher.backends.base import Backend

_REGISTRY = {
    "slurm": "hyperpod_launcher.backends.slurm:SlurmBackend",
    "local": "hyperpod_launcher.backends.local:LocalBackend",
    "sm_jobs": "hyperpod_launcher.backends.sagemaker:SageMakerBackend",
    "k8s": "hyperpod_launcher.backends.k8s:K8sBackend",
}


def get(name: str) -> Backend:
    try:
        target = _REGISTRY[name]
    except KeyError:
        raise NotImplementedError(f"the {name!r} backend is not available yet") from None
    return lazy.load(target)()


def names() -> tuple[str, ...]:
    """The registered backends (what `cluster=` can select and catalog-wide checks cover)."""
    return tuple(_REGISTRY)
