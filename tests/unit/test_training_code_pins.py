"""The training code a stack's recipes were written for is recipe metadata (run.code_repo,
code_version, code_commit in the stack's shared base): the default checkout pins it, and the job
puts the checkout's package ahead of the image's (the per-node script run for real in bash)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import get_type_hints

import pytest
import yaml

from hyperpod_launcher import stacks
from hyperpod_launcher.catalog import recipes as catalog
from hyperpod_launcher.config.recipe_common import RunSection
from hyperpod_launcher.launch.compose import plan
from hyperpod_launcher.spec import recipe_checks
from tests.conftest import REPO, run_launcher
from tests.unit import node_script

ADAPTER = (
    "recipes=training/llama/hf_llama3_8b_seq8k_gpu_p5x16_pretrain",
    "instance_type=p5.48xlarge",
    "cluster=slurm",
)
TRN = (
    "recipes=training/llama/hf_llama3_8b_seq8k_trn1x4_pretrain",
    "instance_type=trn1.32xlarge",
    "cluster=slurm",
)
FIXTURES = REPO / "tests" / "fixtures" / "training_code"
# The versions whose config keys the recipes are checked against (test_training_code_keys).
KEYS_FROM = {
    "adapter": json.loads((FIXTURES / "adapter_config_fields.json").read_text())["source"],
    "neuron": json.loads((FIXTURES / "nxd_training_config_keys.json").read_text())["source"],
}


def pinned_recipes() -> list[tuple[str, str, dict]]:
    with catalog.Composer() as composer:
        found = [
            (name, recipe_checks.stack_of(cfg["recipes"]), cfg["recipes"]["run"])
            for name, cfg in composer.many(catalog.recipe_names())
            if isinstance(cfg.get("recipes"), dict) and "run" in cfg["recipes"]
        ]
    return [row for row in found if stacks.get(row[1]).package]


@pytest.mark.parametrize(("name", "stack", "run"), pinned_recipes(), ids=lambda v: str(v)[:60])
def test_every_recipe_names_the_release_its_keys_were_checked_against(
    name: str, stack: str, run: dict
) -> None:
    source = KEYS_FROM[stack]
    assert run["code_repo"] == f"https://github.com/{source['repository']}.git", name
    assert run["code_commit"] == source["commit"], name
    assert run["code_version"] == source.get("tag", source.get("release")), name


def test_the_default_checkout_pins_the_recipes_commit(tmp_path: Path) -> None:
    base = f"base_results_dir={tmp_path}"
    for overrides, stack in ((ADAPTER, "adapter"), (TRN, "neuron")):
        spec = plan([*overrides, base]).spec
        source = KEYS_FROM[stack]
        assert spec.code.location == f"https://github.com/{source['repository']}.git"
        assert spec.code.commit == source["commit"]
        assert spec.code_package == stacks.get(stack).package
    # The pin is the recipe's: overriding its metadata moves the checkout with it.
    moved = plan([*ADAPTER, base, "recipes.run.code_commit=1234abc"]).spec
    assert moved.code.commit == "1234abc"
    unpinned = plan([*ADAPTER, base, "recipes.run.code_commit=null"]).spec
    assert unpinned.code.commit is None and unpinned.code_package is None
    # The user's git.* choice wins over the recipe's pin.
    chosen = plan([*ADAPTER, base, "git.commit=abc1234"]).spec
    assert chosen.code.commit == "abc1234"
    branch = plan([*ADAPTER, base, "git.branch=dev"]).spec
    assert branch.code.commit is None and branch.code.branch == "dev"
    other = plan([*ADAPTER, base, "git.repo_url_or_path=https://x.example/y.git"]).spec
    assert other.code.commit is None and other.code_package is None


def test_kubernetes_pods_run_the_pinned_commit_with_its_package_first(tmp_path: Path) -> None:
    the_plan = plan(
        [ADAPTER[0], "cluster=k8s", ADAPTER[1], "container=example.com/t:1",
         f"base_results_dir={tmp_path}"]
    )  # fmt: skip
    values = yaml.safe_load(the_plan.files["k8s_template/values.yaml"][0])
    assert values["code"]["commit"] == KEYS_FROM["adapter"]["commit"]
    script = values["scripts"]["train_script.sh"]
    assert "if [ -d src/hyperpod_nemo_adapter ]; then" in script
    assert 'export PYTHONPATH="${PWD}/src${PYTHONPATH:+:${PYTHONPATH}}"' in script


def test_the_recipe_schema_takes_the_metadata_and_checks_it(tmp_path: Path) -> None:
    assert {"code_repo", "code_version", "code_commit"} <= set(get_type_hints(RunSection))
    proc = run_launcher(
        *ADAPTER,
        f"base_results_dir={tmp_path / 'results'}",
        "dry_run=true",
        "recipes.run.code_commit=[1]",
        env={"HPL_STATE_DIR": str(tmp_path / "state"), "XDG_CACHE_HOME": str(tmp_path / "c")},
    )
    assert proc.returncode == 2
    assert proc.stderr == "error: recipes.run.code_commit: expected str or null, got [1]\n"
    assert not (tmp_path / "results").exists()


def test_the_checkouts_package_comes_ahead_of_the_images(tmp_path: Path) -> None:
    the_plan = plan([*ADAPTER, f"base_results_dir={tmp_path}"])
    checkout = Path(the_plan.spec.workdir)
    (checkout / "src" / "hyperpod_nemo_adapter").mkdir(parents=True)
    script = the_plan.request.files["train_script.sh"].text
    proc, calls = node_script.run(
        script, tmp_path, env_names=("PYTHONPATH",), extra_env={"PYTHONPATH": "/image/site"}
    )
    assert proc.returncode == 0, proc.stderr
    assert calls[0]["env"] == {"PYTHONPATH": f"{checkout}/src:/image/site"}

    (checkout / "src" / "hyperpod_nemo_adapter").rmdir()
    proc, calls = node_script.run(script, tmp_path, env_names=("PYTHONPATH",))
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip() == (
        "warning: the checkout has no src/hyperpod_nemo_adapter; the image's installed copy runs"
    )
