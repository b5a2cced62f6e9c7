"""Each training stack is one package under hyperpod_launcher/stacks/<name>/ behind one
registry line: no other module names a stack, deciding a recipe's stack loads none of them,
and every stack states what the launcher asks of it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import typing

import pytest

from hyperpod_launcher import backends, stacks
from hyperpod_launcher.config.instances import Accelerator
from tests.conftest import REPO

PACKAGE = REPO / "hyperpod_launcher"
# `custom` also names the launch mode of a custom script (JobSpec.mode) and its method in the
# catalog, so a scan cannot tell the uses apart; its stack package holds only its schema.
SCANNED = tuple(name for name in stacks.names() if name != stacks.SCRIPT)
ACCELERATORS = set(typing.get_args(Accelerator))
# Where a name may appear outside its package: the stack registry, a backend registry entry
# restricting the stacks it runs (`own_stacks`), and the instance catalog's accelerator kinds.
REGISTRY = PACKAGE / "stacks" / "__init__.py"
ACCELERATOR_CATALOG = PACKAGE / "config" / "instances.py"


def _names_a_stack(line: str, name: str, path: typing.Any) -> bool:
    if not re.search(rf"""["']{re.escape(name)}["']""", line):
        return False
    if "own_stacks=" in line:
        return False
    speaks_of_accelerators = path == ACCELERATOR_CATALOG or "accelerator" in line.lower()
    return not (name in ACCELERATORS and speaks_of_accelerators)


def test_no_module_outside_a_stack_package_names_a_stack() -> None:
    """Outside stacks/<name>/, code asks the registry (`stacks.of`, `stacks.get(...)`'s facts)
    instead of naming a stack."""
    own = {PACKAGE / "stacks" / name for name in stacks.names()}
    found = [
        f"{path.relative_to(REPO)}:{number}: {line.strip()}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if path != REGISTRY and not own & set(path.parents)
        for number, line in enumerate(path.read_text().splitlines(), 1)
        for name in SCANNED
        if _names_a_stack(line, name, path)
    ]
    assert found == []


def test_the_scan_finds_a_stack_name() -> None:
    assert _names_a_stack('if stack == "nemo":', "nemo", PACKAGE / "spec" / "build.py")
    assert _names_a_stack("JOB_OUTPUTS = ('open',)", "open", PACKAGE / "spec" / "build.py")
    assert not _names_a_stack('if spec.accelerator == "neuron":', "neuron", PACKAGE / "x.py")


def test_every_registered_stack_has_a_package_and_a_schema() -> None:
    for name in stacks.names():
        stack = stacks.get(name)
        assert stack.name == name
        assert (PACKAGE / "stacks" / name / "stack.py").is_file()
        assert stack.recipe_schema().__annotations__


def test_own_stacks_name_registered_stacks() -> None:
    for backend in backends.names():
        assert set(backends.entry(backend).own_stacks) <= set(stacks.names())


def test_deciding_a_recipe_s_stack_loads_no_stack() -> None:
    """The registry decides from data; a launch then loads its own stack only."""
    code = (
        "from hyperpod_launcher import stacks\n"
        "assert stacks.of({'run': {'model_type': 'hf'}}) == stacks.DEFAULT\n"
        "import json, sys; print(json.dumps(sorted(sys.modules)))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=False
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    loaded = json.loads(proc.stdout.splitlines()[-1])
    assert [
        m for m in loaded if re.search(r"^hyperpod_launcher\.stacks\.\w+\.(stack|schema)$", m)
    ] == []


@pytest.mark.parametrize(
    ("recipe", "stack"),
    [
        ({"run": {"model_type": "hf"}}, "adapter"),
        ({"run": {"model_type": "neuron-hf"}}, "neuron"),
        ({"run": {"model_type": "llama_v3"}, "distributed_strategy": {}}, "neuron"),
        ({"run": {"model_type": "nemo"}}, "nemo"),
        ({"run": {"model_type": "open_ft"}}, "open"),
        ({"run": {"model_type": "amazon.nova-micro-v1:0:128k"}}, "nova"),
        ({"run": {}, "training_config": {"distillation_data": "s3://b/d"}}, "nova"),
        ({"run": {"model_type": "llama_v3"}}, "adapter"),
    ],
)
def test_a_recipe_s_stack_follows_its_model_type(recipe: dict, stack: str) -> None:
    assert stacks.of(recipe) == stack
