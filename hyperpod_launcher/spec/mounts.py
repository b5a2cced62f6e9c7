"""Container mounts: the `container_mounts` a launch gives (`parse`), and what the resolved
recipe names on this host, de-duplicated and folded.

Every absolute path among the recipe's values (data, model, tokenizer, configs, checkpoints to
resume from...) that exists on the submit host is mounted at the same path, read-only; the
folders the training writes (`WRITTEN_KEYS`) are mounted read-write, whether they exist yet or
not (the batch script creates them). A path that names no file but prefixes some (Megatron's
`data_prefix` of `<prefix>.bin`/`.idx`) mounts its folder. Launcher keys (`run.*`) are left
out: the entry script travels with the job on its own.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from hyperpod_launcher.util.errors import UserError


@dataclass(frozen=True)
class Mount:
    source: str
    target: str
    options: str | None = None

    def __str__(self) -> str:
        return ":".join(p for p in (self.source, self.target, self.options) if p)


MOUNT_OPTIONS = {"ro", "rw", "private", "rprivate", "slave", "rslave", "shared", "rshared"}


def parse(spec: str, key: str) -> Mount:
    """`src[:dst[:options]]` with absolute paths; `a` means `a:a` (pyxis/docker syntax)."""
    problem = None
    parts = spec.split(":") if isinstance(spec, str) else []
    if not parts or len(parts) > 3 or any(not p for p in parts):
        problem = "expected 'source[:target[:options]]'"
    elif "," in spec or any(c.isspace() for c in spec):
        problem = "commas and whitespace are not allowed"
    elif not all(os.path.isabs(p) for p in parts[:2]):
        problem = "source and target must be absolute paths"
    elif len(parts) == 3 and not set(parts[2].split("+")) <= MOUNT_OPTIONS:
        problem = f"options must be from {', '.join(sorted(MOUNT_OPTIONS))}"
    if problem:
        raise UserError(f"{key}: malformed mount {spec!r}: {problem}")
    source = parts[0]
    target = parts[1] if len(parts) > 1 else source
    return Mount(source, target, parts[2] if len(parts) == 3 else None)


def check_sources(named: Iterable[tuple[str, str | None]]) -> None:
    """Paths a container mounts are joined with commas (pyxis's --container-mounts): a comma
    inside one would add a mount of its own."""
    for key, path in named:
        if path and "," in path:
            raise UserError(
                f"{key}={path!r}: a comma is not allowed in a path the job mounts (container "
                "mount lists are comma-separated)"
            )


WRITTEN_KEYS = frozenset(
    {
        "exp_manager.exp_dir",
        "exp_manager.checkpoint_dir",
        "exp_manager.explicit_log_dir",
        "exp_manager.export_full_model.final_export_dir",
        "exp_manager.summary_writer_kwargs.save_dir",  # the loggers write under exp_dir
        "exp_manager.wandb_logger_kwargs.save_dir",
        "exp_manager.mlflow_logger_kwargs.tracking_uri",
        "compiler_cache_url",
    }
)
SKIPPED_PREFIXES = ("run.",)


def _values(node: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(node, Mapping):
        for key, value in node.items():
            yield from _values(value, f"{prefix}{key}.")
    elif isinstance(node, list):
        for item in node:
            yield from _values(item, prefix)
    else:
        yield prefix.rstrip("."), node


def _is_local_path(value: Any) -> bool:
    return (
        isinstance(value, str)
        and value.startswith("/")
        and not value.startswith("//")
        and not any(c.isspace() or c in ",:" for c in value)
    )


def recipe_mounts(recipe: Mapping[str, Any]) -> list[Mount]:
    mounts: list[Mount] = []
    for key, value in _values(recipe):
        if key.startswith(SKIPPED_PREFIXES) or not _is_local_path(value):
            continue
        path = os.path.normpath(value)
        if key in WRITTEN_KEYS:
            mounts.append(Mount(path, path))
        elif os.path.exists(path):
            mounts.append(Mount(path, path, "ro"))
        elif glob.glob(glob.escape(path) + ".*"):  # a prefix of files, e.g. <prefix>.bin
            parent = os.path.dirname(path)
            mounts.append(Mount(parent, parent, "ro"))
    return mounts


def unreachable(recipe: Mapping[str, Any], roots: Iterable[str]) -> Iterator[tuple[str, str, bool]]:
    """(key, path, written) for each absolute path of the recipe (launcher keys left out) under
    none of `roots`: the folders every node of a job without a shared filesystem sees."""
    roots = [os.path.normpath(r) for r in roots]
    for key, value in _values(recipe):
        if key.startswith(SKIPPED_PREFIXES) or not _is_local_path(value):
            continue
        path = os.path.normpath(value)
        if not any(_inside(path, root) for root in roots):
            yield key, value, key in WRITTEN_KEYS


def is_read_only(mount: Mount) -> bool:
    return "ro" in (mount.options or "").split("+")


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def fold(mounts: Iterable[Mount]) -> list[Mount]:
    """Parents first; a mount another one already provides (same source, and writable if it
    must be) is dropped; the first mount of a target wins. Read-write folders nested inside a
    read-only one stay, after it."""
    ordered = sorted(
        (Mount(os.path.normpath(m.source), os.path.normpath(m.target), m.options) for m in mounts),
        key=lambda m: m.target.count("/"),
    )
    result: list[Mount] = []
    for mount in ordered:
        covering = [p for p in result if _inside(mount.target, p.target)]
        if covering:
            parent = max(covering, key=lambda p: len(p.target))
            relative = os.path.relpath(mount.target, parent.target)
            same_source = os.path.normpath(os.path.join(parent.source, relative)) == mount.source
            if mount.target == parent.target:
                if same_source and is_read_only(parent) and not is_read_only(mount):
                    result[result.index(parent)] = mount  # one mount, writable
                continue
            if same_source and (is_read_only(mount) or not is_read_only(parent)):
                continue
        result.append(mount)
    return result
