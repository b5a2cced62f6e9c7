"""OmegaConf resolvers that recipes use (the names HyperPod recipe users know)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from omegaconf import OmegaConf

from hyperpod_launcher.util import resources


def _multiply(a: float, b: float) -> float:
    return a * b


def _divide_ceil(a: float, b: float) -> int:
    return math.ceil(a / b)


def _divide_floor(a: float, b: float) -> int:
    return math.floor(a / b)


RESOLVERS: dict[str, Callable[..., Any]] = {
    "multiply": _multiply,
    "divide_ceil": _divide_ceil,
    "divide_floor": _divide_floor,
    "hpl_example": resources.example_path,
}


def register() -> None:
    for name, fn in RESOLVERS.items():
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, fn)
