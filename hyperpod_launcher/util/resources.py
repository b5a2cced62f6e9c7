"""Where the shipped config and templates live: in the wheel, or in the source tree.

The shared templates (common/, launch_scripts/) sit in one folder; each backend package keeps
its own under hyperpod_launcher/backends/<name>/templates/."""

from __future__ import annotations

from functools import cache
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent.parent


def _shipped(name: str) -> Path:
    # A wheel carries the folders inside the package; a source checkout has them beside it.
    inside = _PACKAGE_DIR / name
    return inside if inside.is_dir() else _PACKAGE_DIR.parent / name


@cache
def config_dir() -> Path:
    return _shipped("recipes_collection")


@cache
def templates_dir() -> Path:
    return _shipped("templates")


def backend_templates_dirs() -> dict[str, Path]:
    """{backend package name: its templates folder}, for every backend that has one."""
    folders = sorted((_PACKAGE_DIR / "backends").glob("*/templates"))
    return {path.parent.name: path for path in folders if path.is_dir()}


def recipes_dir() -> Path:
    return config_dir() / "recipes"


def example_path(name: str) -> str:
    """Absolute path of a built-in example script (hyperpod_launcher/examples/<name>)."""
    path = _PACKAGE_DIR / "examples" / name
    if not path.is_file():
        raise ValueError(f"no built-in example named {name!r}")
    return str(path)


def is_example(path: str) -> bool:
    """The path is one of the launcher's own example scripts (shipped with the job)."""
    return Path(path).resolve().parent == _PACKAGE_DIR / "examples"


# Modules an example imports from its own folder: they ship with it (the job's image need not
# have the launcher).
_EXAMPLE_COMPANIONS = {"open_ft.py": ("hpl_metrics.py",)}


def example_companions(script: str) -> list[str]:
    """Absolute paths of the files that ship beside a built-in example script (none for other
    scripts)."""
    if not is_example(script):
        return []
    folder = _PACKAGE_DIR / "examples"
    return [str(folder / name) for name in _EXAMPLE_COMPANIONS.get(Path(script).name, ())]
