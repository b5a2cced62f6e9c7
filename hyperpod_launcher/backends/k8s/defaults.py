"""What a Kubernetes job has where a recipe leaves its experiment folder or cache unset: a
folder of the first writable persistent volume claim (`<mountPath>/<run.name>/exp` and
`.../cache`), the storage every pod of the job shares and that outlives them. Without a claim
there is no default: the pods share no other storage."""

from __future__ import annotations

from collections.abc import Mapping

from hyperpod_launcher.spec.required import BackendDefaults, Get


def _claim_folder(get: Get) -> str | None:
    name = get("recipes.run.name")
    for claim in get("cluster.persistent_volume_claims") or ():
        if isinstance(claim, Mapping) and claim.get("mountPath") and not claim.get("readOnly"):
            return f"{str(claim['mountPath']).rstrip('/')}/{name}" if name else None
    return None


def _under_claim(leaf: str):
    def folder(get: Get) -> str | None:
        root = _claim_folder(get)
        return f"{root}/{leaf}" if root else None

    return folder


REQUIRED_DEFAULTS = BackendDefaults(
    exp_dir=_under_claim("exp"),
    cache_dir=_under_claim("cache"),
    shared_needs="mount a claim (cluster.persistent_volume_claims), whose folder is the default",
)
