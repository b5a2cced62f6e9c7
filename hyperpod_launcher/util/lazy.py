"""Import `"package.module:Name"` on first use: registries name code without loading it."""

from __future__ import annotations

import importlib
from typing import Any


def load(target: str) -> Any:
    module, name = target.split(":")
    return getattr(importlib.import_module(module), name)
