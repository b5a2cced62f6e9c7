"""The Python stack an open fine-tuning job (examples/open_ft.py) imports, and its checks.

SageMaker jobs get it as a requirements.txt beside the entry (the framework image installs it
before the entry starts); Kubernetes and Slurm containers must hold it (the image contract of
docs/open-fine-tuning.md); `preflight` looks for it with the job's own Python where that Python
is on this host.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping
from typing import Any

import yaml

# The [train] extra of pyproject.toml without torch, which the image brings (CUDA build).
REQUIREMENTS = (
    "transformers>=5.0,<6",
    "trl>=1.16,<2",
    "peft>=0.21",
    "datasets>=4",
    "accelerate>=1.10",
    "tokenizers>=0.22",
    "deepspeed>=0.19",
    "tensorboard>=2.18",
)
MODULES = ("torch", "transformers", "trl", "peft", "datasets", "accelerate")
IMPORT_TIMEOUT = 30.0


def is_open_ft(recipe: Mapping[str, Any]) -> bool:
    run = recipe.get("run") or {}
    return isinstance(run, Mapping) and run.get("model_type") in ("open_ft", "deepspeed")


def requirements_txt() -> str:
    return "# The open fine-tuning entry's stack (hyperpod-launcher's [train] extra).\n" + "".join(
        f"{line}\n" for line in REQUIREMENTS
    )


def modules(recipe: Mapping[str, Any]) -> tuple[str, ...]:
    """The modules the entry imports for this recipe."""
    model = recipe.get("model") or {}
    strategy = model.get("strategy") if isinstance(model, Mapping) else None
    return MODULES + (("deepspeed",) if strategy == "deepspeed" else ())


def job_python() -> str | None:
    """The Python behind `torchrun` on PATH (what the job's nodes start), from its shebang."""
    torchrun = shutil.which("torchrun")
    if not torchrun:
        return None
    with open(torchrun, "rb") as handle:
        first = handle.readline().decode(errors="replace").strip()
    if not first.startswith("#!"):
        return None
    command = first[2:].split()
    if command and os.path.basename(command[0]) == "env":
        command = command[1:]
    return shutil.which(command[0]) if command else None


def missing_modules(python: str, names: tuple[str, ...]) -> list[str]:
    """The modules `python` cannot find on its path (it looks, without importing them all:
    importing the whole stack takes a minute on a busy machine)."""
    probe = (
        "import importlib.util, sys\n"
        "for name in sys.argv[1:]:\n"
        "    if importlib.util.find_spec(name) is None:\n"
        "        print(name)\n"
    )
    proc = subprocess.run(
        [python, "-c", probe, *names],
        capture_output=True,
        text=True,
        timeout=IMPORT_TIMEOUT,
        check=False,
    )
    return proc.stdout.split()


def recipe_of(recipe_yaml: str | None) -> dict[str, Any]:
    loaded = yaml.safe_load(recipe_yaml) if recipe_yaml else None
    return loaded if isinstance(loaded, dict) else {}


def check(spec: Any) -> Any:
    """Preflight: the job's Python has the stack (an open fine-tuning job without a
    container image, whose Python is the `torchrun` on this host's PATH)."""
    from hyperpod_launcher.prepare.preflight import fail, ok

    recipe = recipe_of(spec.recipe_yaml)
    if not is_open_ft(recipe):
        return ok("not an open fine-tuning job")
    if spec.image:
        return ok(
            f"image {spec.image}: it must hold the [train] stack"
            " (docs/open-fine-tuning.md: job image)"
        )
    python = job_python()
    if python is None:
        return fail("no torchrun on PATH", "install the [train] extra: pip install '.[train]'")
    missing = missing_modules(python, modules(recipe))
    if missing:
        return fail(
            f"{python} lacks {', '.join(missing)}",
            "install the [train] extra into that Python: pip install '.[train]'",
        )
    return ok(f"{python} has {', '.join(modules(recipe))}")


def checks(spec: Any) -> list[Any]:
    """The stack check, for open fine-tuning jobs only."""
    from hyperpod_launcher.prepare.preflight import Check

    if not is_open_ft(recipe_of(spec.recipe_yaml)):
        return []
    return [Check("open fine-tuning stack", lambda: check(spec), timeout=IMPORT_TIMEOUT + 10)]
