"""Which cluster files define a key: advice for a key given to the wrong backend."""

from __future__ import annotations

import dataclasses

from hyperpod_launcher import backends


def _has(backend: str, key: str) -> bool:
    return any(f.name == key for f in dataclasses.fields(backends.options_schema(backend)))


def wrong_backend(dotted: str, backend: str) -> str | None:
    """For `cluster.<key>...` that only other backends' files define: the one-line advice."""
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
