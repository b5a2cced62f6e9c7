"""Recipe schemas: every catalog recipe and every HyperPod v1 recipe value passes its stack's
schema, and violating values are one line naming the key, the value and the rule.

tests/fixtures/hyperpod_v1_recipes.json holds each leaf key and value of the 120 recipes of
aws/sagemaker-hyperpod-recipes at v1.5.1 (its final v1 catalog, Apache-2.0).
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest

from hyperpod_launcher import stacks
from hyperpod_launcher.catalog import recipes as catalog
from hyperpod_launcher.config.validate import check_section
from hyperpod_launcher.spec import recipe_checks
from hyperpod_launcher.util.errors import UserError
from tests.conftest import REPO

EXPONENT = re.compile(r"[-+]?\d+(\.\d*)?[eE][-+]?\d+")
V1_RECIPES = REPO / "tests" / "fixtures" / "hyperpod_v1_recipes.json"
L8B = "training/llama/hf_llama3_8b_seq8k_gpu_p5x16_pretrain"


def recipe_schema(stack: str) -> type:
    return stacks.get(stack).recipe_schema()


@pytest.fixture(scope="module")
def composed() -> dict[str, dict[str, Any]]:
    with catalog.Composer() as composer:
        return dict(composer.many(catalog.recipe_names(), ("cluster=slurm",)))


def test_every_stack_has_a_schema() -> None:
    for stack in stacks.names():
        assert recipe_schema(stack).__annotations__


def test_the_whole_catalog_passes_its_schemas(composed: dict[str, dict[str, Any]]) -> None:
    seen = set()
    for cfg in composed.values():
        recipe = cfg.get("recipes")
        if isinstance(recipe, dict):
            stack = recipe_checks.stack_of(recipe)
            check_section(recipe, recipe_schema(stack), "recipes", added=())
        else:
            stack = stacks.SCRIPT
            check_section(cfg["training_cfg"], recipe_schema(stack), "training_cfg")
        seen.add(stack)
    assert seen == set(stacks.names()), "every stack has a recipe in the catalog"


def _nested(flat: dict[str, Any]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for key, value in flat.items():
        if isinstance(value, str) and "${" in value:
            continue  # an interpolation: its value is another key's
        *parents, leaf = key.split(".")
        node = tree
        for part in parents:
            node = node.setdefault(part, {})
        # `2e-4` is a string to YAML 1.1 (the reference's reader) and a float to OmegaConf
        node[leaf] = float(value) if isinstance(value, str) and EXPONENT.fullmatch(value) else value
    return tree


def test_every_hyperpod_v1_key_and_value_is_accepted() -> None:
    v1 = json.loads(V1_RECIPES.read_text())
    assert len(v1) == 120
    for name, flat in v1.items():
        recipe = _nested(flat)
        model_type = flat.get("run.model_type")
        stack = stacks.named_by(model_type) or ("nemo" if "nemo" in name else None)
        stack = stack or recipe_checks.stack_of(recipe)  # Nova recipes: by their model
        assert stack is not None, name
        check_section(recipe, recipe_schema(stack), "recipes", added=())


def _set(recipe: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(recipe)
    *parents, leaf = dotted.split(".")
    node = changed
    for part in parents:
        node = node[part]
    node[leaf] = value
    return changed


# key -> (bad value, fragment of the rule); on the Llama 3 8B adapter recipe
ADAPTER_BAD = {
    "model.train_batch_size": (0, "expected int >= 1, got 0"),
    "trainer.max_steps": (-3, "expected int >= 1, got -3"),
    "model.optim.lr": ("abc", "expected float > 0, got 'abc'"),
    "model.max_context_width": (0, "expected int >= 1"),
    "trainer.num_nodes": (0, "expected int >= 1"),
    "model.shard_degree": (-1, "expected int >= 1 or null"),
    "model.peft.peft_type": ("lora2", "one of 'lora', 'qlora_4bit' or null, got 'lora2'"),
    "model.sharding_strategy": ("full_shrd", "did you mean 'full_shard'"),
    "model.optim.name": ("adam", "one of 'adamw', got 'adam'"),
    "trainer.precision": ("bf17", "did you mean 'bf16'"),
    "model.peft.dropout": (1.5, "expected float >= 0 and <= 1"),
    "model.fp8": ("yes", "expected bool, got 'yes'"),
}


@pytest.mark.parametrize("key", ADAPTER_BAD)
def test_a_bad_adapter_value_names_key_value_and_rule(
    composed: dict[str, dict[str, Any]], key: str
) -> None:
    value, fragment = ADAPTER_BAD[key]
    recipe = _set(composed[L8B]["recipes"], key, value)
    with pytest.raises(UserError) as err:
        check_section(recipe, recipe_schema("adapter"), "recipes", added=())
    assert str(err.value).startswith(f"recipes.{key}: expected "), err.value
    assert fragment in str(err.value)


# (recipe, stack, key, bad value, fragment)
OTHER_STACKS_BAD = (
    ("training/llama/hf_llama3_8b_seq8k_trn1x4_pretrain", "neuron", "trainer.max_steps", -2, "-1"),
    (
        "training/llama/hf_llama3_8b_seq8k_trn1x4_pretrain",
        "neuron",
        "precision.type",
        "bf16",
        "bf16SR",
    ),
    (
        "training/llama/hf_llama3_8b_seq8k_trn1x4_pretrain",
        "neuron",
        "model.optim.name",
        "adamw_fp32",
        "adamw_fp32OptState",
    ),
    ("training/llama/megatron_llama3_1_8b_nemo", "nemo", "model.micro_batch_size", 0, ">= 1"),
    (
        "training/llama/megatron_llama3_1_8b_nemo",
        "nemo",
        "model.optim.name",
        "fused_adamw",
        "fused_adam",
    ),
    (
        "fine-tuning/deepspeed/hf_llama3_8b_seq8k_gpu_zero2",
        "open",
        "deepspeed.zero_stage",
        4,
        "one of 0, 1, 2, 3",
    ),
    (
        "fine-tuning/deepspeed/hf_llama3_8b_seq8k_gpu_zero2",
        "open",
        "model.optim.lr",
        -1e-5,
        "> 0",
    ),
)


@pytest.mark.parametrize("case", OTHER_STACKS_BAD, ids=lambda c: f"{c[1]}:{c[2]}")
def test_a_bad_value_of_each_stack_is_rejected(
    composed: dict[str, dict[str, Any]], case: tuple[str, str, str, Any, str]
) -> None:
    name, stack, key, value, fragment = case
    assert recipe_checks.stack_of(composed[name]["recipes"]) == stack
    recipe = _set(composed[name]["recipes"], key, value)
    with pytest.raises(UserError) as err:
        check_section(recipe, recipe_schema(stack), "recipes", added=())
    assert f"recipes.{key}: expected" in str(err.value) and fragment in str(err.value)


def test_unknown_keys_get_did_you_mean_unless_added(composed: dict[str, dict[str, Any]]) -> None:
    recipe = _set(composed[L8B]["recipes"], "model.trian_batch_size", 2)
    with pytest.raises(UserError) as err:
        check_section(recipe, recipe_schema("adapter"), "recipes", added=())
    assert "unknown key 'recipes.model.trian_batch_size'" in str(err.value)
    assert "did you mean 'train_batch_size'" in str(err.value)
    assert "+recipes.model.trian_batch_size=" in str(err.value)
    added = {"recipes.model.trian_batch_size"}
    check_section(recipe, recipe_schema("adapter"), "recipes", added=added)
    nested = _set(composed[L8B]["recipes"], "model.extra", {"a": 1})
    check_section(nested, recipe_schema("adapter"), "recipes", added={"recipes.model.extra"})
