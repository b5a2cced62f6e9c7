"""cluster/local.yaml: the local backend's options."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class LocalOptions:
    """cluster/local.yaml: run the job on this machine."""

    detach: bool = False
