"""Every recipe key is one the training code it runs knows, at the version the recipes target.

- Adapter recipes against the SageMaker HyperPod training adapter's pydantic config schema
  (tests/fixtures/training_code/adapter_config_fields.json: field names per section, with the
  adapter commit they come from). Where a section forbids unknown keys, any other key stops the
  job at start-up; where it ignores them, a key that is neither a field nor HyperPod v1's own key
  would be dropped unread, so it is a mistake too.
- Trainium recipes against NxD Training's config keys
  (tests/fixtures/training_code/nxd_training_config_keys.json, with the commit).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from functools import cache
from typing import Any

import pytest

from hyperpod_launcher.catalog import recipes as catalog
from hyperpod_launcher.spec import recipe_checks
from tests.conftest import REPO
from tests.unit.test_hyperpod_fidelity import DEVIATIONS, REFERENCE, deviation

FIXTURES = REPO / "tests" / "fixtures" / "training_code"
ADAPTER = json.loads((FIXTURES / "adapter_config_fields.json").read_text())
NXD = json.loads((FIXTURES / "nxd_training_config_keys.json").read_text())
# NxD Training runs NeMo's experiment manager, whose config has the logger switches and their
# kwargs; HyperPod v1.5.1 writes them (all loggers off) though NxD's example configs do not.
NEMO_LOGGER_KEYS = tuple(
    f"exp_manager.{key}"
    for key in (
        *("create_wandb_logger", "create_mlflow_logger", "wandb_logger_kwargs."),
        *("mlflow_logger_kwargs.", "summary_writer_kwargs."),
    )
)
NXD_KEYS = frozenset(NXD["keys"])
# The launcher reads the run section (the training code ignores it): job name, results folder,
# time limit, which stack, the instance it is sized for, the code and entry script to run.
RUN_KEYS = frozenset(
    {
        *("name", "results_dir", "time_limit", "model_type", "compile"),
        *("instance_type", "code_repo", "code_version", "code_commit", "entry_script"),
    }
)


def leaves(tree: Mapping[str, Any], prefix: str = "") -> Iterator[str]:
    for key, value in tree.items():
        if isinstance(value, Mapping) and value:
            yield from leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}"


@cache
def recipes() -> dict[str, dict[str, Any]]:
    with catalog.Composer() as composer:
        return {
            name: cfg["recipes"]
            for name, cfg in composer.many(catalog.recipe_names())
            if isinstance(cfg.get("recipes"), Mapping)
        }


def of_stack(stack: str) -> list[str]:
    return sorted(n for n, r in recipes().items() if recipe_checks.stack_of(r) == stack)


def adapter_verdict(key: str) -> tuple[str, str] | None:
    """(section, reason) when the adapter's schema does not take `key`; None when it does."""
    sections = ADAPTER["sections"]
    parts = key.split(".")
    depth = max(d for d in range(len(parts)) if ".".join(parts[:d]) in sections)
    section = ".".join(parts[:depth])
    spec, field = sections[section], parts[depth]
    if field in spec["fields"]:
        return None
    return section, "rejected" if spec["extra"] == "forbid" else "ignored"


def adapter_problems(name: str, recipe: Mapping[str, Any]) -> list[str]:
    found = []
    hyperpod = REFERENCE.get(name, {})
    for key in leaves(recipe):
        verdict = adapter_verdict(key)
        if verdict is None or (key.startswith("run.") and key.split(".")[1] in RUN_KEYS):
            continue
        section, reason = verdict
        if reason == "ignored" and key in hyperpod:
            continue  # HyperPod v1 writes it; kept so its users' overrides still apply
        found.append(f"{key}: {reason} by the adapter's {section or 'top-level'} schema")
    return found


def test_fixtures_name_their_source() -> None:
    assert ADAPTER["source"]["repository"] == "aws/sagemaker-hyperpod-training-adapter-for-nemo"
    assert len(ADAPTER["source"]["commit"]) == 40 and ADAPTER["source"]["tag"] == "v1.4.0"
    assert NXD["source"]["repository"] == "aws-neuron/neuronx-distributed-training"
    assert len(NXD["source"]["commit"]) == 40
    assert ADAPTER["sections"]["model"]["extra"] == "forbid"


@pytest.mark.parametrize("name", of_stack("adapter"))
def test_adapter_recipe_keys_are_schema_fields(name: str) -> None:
    found = adapter_problems(name, recipes()[name])
    assert not found, f"{name}:\n  " + "\n  ".join(found)


def test_every_hyperpod_key_the_adapter_rejects_is_a_declared_deviation() -> None:
    for name, keys in REFERENCE.items():
        if name not in of_stack("adapter"):
            continue
        for key in keys:
            verdict = adapter_verdict(key)
            if verdict and verdict[1] == "rejected":
                row = deviation(name, key)
                assert row is not None, f"{name}: {key} is rejected by the adapter, not declared"
                assert adapter_verdict(row.get("ours_key", key)) is None


def test_the_adapter_check_catches_an_unknown_model_key() -> None:
    name = "training/mistral/hf_mistral_7b_seq8k_gpu_p5x16_pretrain"
    recipe = {**recipes()[name], "model": {**recipes()[name]["model"], "mistral_sliding_window": 1}}
    assert adapter_problems(name, recipe) == [
        "model.mistral_sliding_window: rejected by the adapter's model schema"
    ]


def nxd_problems(recipe: Mapping[str, Any]) -> list[str]:
    return [
        f"{key}: not a config key of NxD Training at {NXD['source']['commit'][:7]}"
        for key in leaves(recipe)
        if key not in NXD_KEYS
        and not (key.startswith("run.") and key[4:] in RUN_KEYS)
        and not key.startswith(NEMO_LOGGER_KEYS)
    ]


@pytest.mark.parametrize("name", of_stack("neuron"))
def test_trainium_recipe_keys_are_nxd_training_keys(name: str) -> None:
    found = nxd_problems(recipes()[name])
    assert not found, f"{name}:\n  " + "\n  ".join(found)


def test_trainium_recipes_recompute_activations_by_module_list() -> None:
    assert "model.activations_checkpoint_recompute_mlp" not in NXD_KEYS
    assert nxd_problems({"model": {"activations_checkpoint_recompute_mlp": True}})
    for name in of_stack("neuron"):
        model = recipes()[name]["model"]
        assert model["activations_checkpoint_granularity"] == "selective"
        assert "CoreAttention" in model["activations_checkpoint_recompute"], name
    assert any(r["key"] == "model.activations_checkpoint_recompute_mlp" for r in DEVIATIONS)
