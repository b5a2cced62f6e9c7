"""The one YAML writer: keys in their given order, block style, multi-line text as `|` blocks."""

from __future__ import annotations

from functools import cache
from typing import Any

WIDTH = 100


@cache
def _dumper() -> type:
    import yaml

    base = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # the C dumper where libyaml exists

    def text(dumper: Any, value: str) -> Any:
        style = "|" if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    dumper: Any = type("TextDumper", (base,), {})
    dumper.add_representer(str, text)
    return dumper


def dump(data: Any) -> str:
    import yaml

    return yaml.dump(data, Dumper=_dumper(), sort_keys=False, default_flow_style=False, width=WIDTH)
