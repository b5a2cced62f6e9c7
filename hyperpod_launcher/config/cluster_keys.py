"""Which cluster files define a key: advice for a key given to the wrong backend."""

from __future__ import annotations

import dataclasses

from hyperpod_launcher import backends


def _has(backend: str, key: str) -> bool:
    return any(f.name == key for f in dataclasses.fields(backends.options_schema(backend)))


# SageMaker HyperPod's names for keys this launcher keeps elsewhere -> where they are here.
HYPERPOD_NAMES = {
    "cluster.instance_type": "instance_type=<type>",
    "cluster.cluster_type": "cluster=<name>",
    "cluster.cluster_config": "cluster.<key> (cluster_config's keys sit directly under cluster)",
    "slurm_docker_cfg": "",  # a cluster key of ours under the same name: see _ours
}


def _ours(key: str) -> str:
    where = " or ".join(f"cluster={name}" for name in backends.names() if _has(name, key))
    return f"cluster.{key} ({where})"


def hyperpod_name(dotted: str) -> str | None:
    """For a key by SageMaker HyperPod's name: the one-line advice naming ours."""
    for theirs, ours in HYPERPOD_NAMES.items():
        if dotted == theirs or dotted.startswith(theirs + "."):
            ours = ours or _ours(theirs)
            return f"'{dotted}' is SageMaker HyperPod's name; here it is {ours}"
    return None


def wrong_backend(dotted: str, backend: str) -> str | None:
    """For `cluster.<key>...` that only other backends' files define, or a key by HyperPod's
    name: the one-line advice."""
    if advice := hyperpod_name(dotted):
        return advice
    head, _, rest = dotted.partition(".")
    if head != "cluster" or not rest:
        return None
    key = rest.split(".")[0]
    if _has(backend, key):  # only this backend's schema is loaded on the usual path
        return None
    found = [name for name in backends.names() if name != backend and _has(name, key)]
    if not found:
        return None
    return (
        f"'{dotted}' is a key of {' and '.join(f'cluster={n}' for n in found)}; "
        f"this launch uses cluster={backend} (add {' or '.join(f'cluster={n}' for n in found)})"
    )
