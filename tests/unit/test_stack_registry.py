"""A training stack is one registry entry: a toy stack defined in this test module (its schema,
layout, required value, resume rule, environment and entry) runs a dry run through the
launcher's own code, with nothing edited in the package. CONTRIBUTING's "Add a stack" follows
these steps."""

from __future__ import annotations

from pathlib import Path

import pytest

from hyperpod_launcher import stacks
from hyperpod_launcher.cli import main as cli
from hyperpod_launcher.config.recipe_common import RunSection
from hyperpod_launcher.config.rules import Count, Section
from hyperpod_launcher.stacks import checks
from hyperpod_launcher.stacks.base import Layout, Need, Stack, always
from hyperpod_launcher.stacks.resume import Resume
from hyperpod_launcher.util.errors import UserError

RECIPE = "training/toy/toy_8b_sft"
RECIPE_YAML = """\
run:
  name: toy-sft
  model_type: toy_ft
trainer:
  num_nodes: 2
  devices: 8
toy:
  groups: 4
  checkpoints: /fsx/toy/checkpoints
"""


class ToyTrainer(Section):
    num_nodes: Count
    devices: Count


class ToySettings(Section):
    groups: Count
    data: str | None
    checkpoints: str | None


class ToyRecipe(Section):
    """The toy stack's recipes: every key they may have."""

    run: RunSection
    trainer: ToyTrainer
    toy: ToySettings


def toy_layout(recipe: dict, nodes: int, devices: int) -> Layout:
    world = nodes * devices
    groups = checks.degree(recipe, "toy.groups")
    if world % groups:
        raise UserError(
            f"recipes.toy.groups={groups}: must divide {checks.world_text(nodes, devices)}"
        )
    return Layout("toy", world, {"G": groups, "DP": world // groups})


def toy_resume(recipe: dict) -> Resume:
    return Resume("toy", folder=recipe["toy"]["checkpoints"], pattern="step_*", order="step")


TOY = Stack(
    name="toy",
    schema=f"{__name__}:ToyRecipe",
    layout=toy_layout,
    required=(Need("toy.data", "its training data", always, "data_dir", "TOY_DATA"),),
    resume=toy_resume,
    env=("CUDA_DEVICE_MAX_CONNECTIONS",),
    entry="toy_examples/{family}_sft.py",
)


@pytest.fixture
def toy_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(stacks, "_REGISTRY", dict(stacks._REGISTRY))
    stacks.register("toy", stacks.Entry(f"{__name__}:TOY", ("toy_ft",)))
    config_dir = tmp_path / "conf"
    recipe = config_dir / "recipes" / f"{RECIPE}.yaml"
    recipe.parent.mkdir(parents=True)
    recipe.write_text(RECIPE_YAML)
    return config_dir


def dry_run(config_dir: Path, tmp_path: Path, *extra: str) -> int:
    return cli.main(
        [
            "--config-dir",
            str(config_dir),
            f"recipes={RECIPE}",
            "cluster=slurm",
            "instance_type=p5.48xlarge",
            f"base_results_dir={tmp_path / 'results'}",
            "dry_run=true",
            *extra,
        ]
    )


def test_a_registered_stack_dry_runs(
    toy_config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert "toy" in stacks.names()
    assert stacks.of({"run": {"model_type": "toy_ft"}}) == "toy"

    assert dry_run(toy_config, tmp_path) == 0
    out = capsys.readouterr().out
    # Its required value: Slurm has no default for data, so the dry run warns.
    assert "recipes.toy.data=null: the toy recipe needs its training data" in out
    script = (tmp_path / "results" / "toy-sft" / "train_script.sh").read_text()
    assert "toy_examples/toy_sft.py" in script  # its entry, for the recipe's model family
    assert "/fsx/toy/checkpoints" in script  # its resume rule
    assert "CUDA_DEVICE_MAX_CONNECTIONS" in script  # its environment

    # Its schema checks every key; its layout checks the parallel math; one line, exit 2.
    assert dry_run(toy_config, tmp_path, "recipes.toy.groups=0") == 2
    assert capsys.readouterr().err == "error: recipes.toy.groups: expected int >= 1, got 0\n"
    assert dry_run(toy_config, tmp_path, "recipes.toy.groups=3") == 2
    err = capsys.readouterr().err
    assert (
        err == "error: recipes.toy.groups=3: must divide the world size 16 (2 nodes x 8 devices)\n"
    )


def test_a_stack_s_schema_is_served_by_schema(
    toy_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["schema", "stack/toy"]) == 0
    assert '"groups"' in capsys.readouterr().out
