"""Every recipe with a SageMaker HyperPod v1 name resolves to HyperPod's keys and values.

tests/fixtures/hyperpod_v1_recipes.json holds every leaf key path and value of HyperPod's v1
recipe files. Each recipe of ours with that name is composed as `python main.py recipes=<name>`
composes it (catalog.Composer, the composition `recipes show` and the catalog dry run use) and
compared key by key. A difference passes only when tests/fixtures/hyperpod_v1_deviations.yaml
declares it (the same table docs/recipes.md shows), and every declared row must still be needed.
Per-launch values (run names, data/experiment/model paths, tokens) are compared by presence only.
A key HyperPod's adapter recipe leaves out takes the adapter schema's default there, so where
ours sets it, it must set that default (tests/fixtures/training_code/adapter_config_fields.json).
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from hyperpod_launcher.catalog import recipes as catalog
from hyperpod_launcher.spec import recipe_checks
from hyperpod_launcher.util.dotted import get as _get
from tests.conftest import REPO, run_launcher

FIXTURES = REPO / "tests" / "fixtures"
# YAML 1.1 (PyYAML, which the reference was read with) leaves `1e-5` a string; OmegaConf, which
# reads the recipes at launch, makes it a float. The reference's such strings are numbers.
YAML11_FLOAT = re.compile(r"[-+]?[0-9]+(\.[0-9]*)?[eE][-+]?[0-9]+")


def as_launched(value: Any) -> Any:
    return float(value) if isinstance(value, str) and YAML11_FLOAT.fullmatch(value) else value


REFERENCE: dict[str, dict[str, Any]] = {
    name: {key: as_launched(value) for key, value in keys.items()}
    for name, keys in json.loads((FIXTURES / "hyperpod_v1_recipes.json").read_text()).items()
}
DEVIATIONS: list[dict[str, Any]] = yaml.safe_load(
    (FIXTURES / "hyperpod_v1_deviations.yaml").read_text()
)["deviations"]
ADAPTER_SECTIONS = json.loads(
    (FIXTURES / "training_code" / "adapter_config_fields.json").read_text()
)["sections"]
RECIPES_DOC = REPO / "docs" / "recipes.md"
SECTION = "## Differences from SageMaker HyperPod v1 recipes"

# Values a user sets per launch: the key must exist, its value is theirs.
PER_LAUNCH = {
    "run.name": "the job's name",
    "exp_manager.exp_dir": "experiment path",
    "exp_manager.explicit_log_dir": "experiment path",
    "exp_manager.wandb_logger_kwargs.name": "the job's name",
    "data.train_dir": "data path",
    "data.tokenizer.type": "tokenizer path",
    "model.data.train_dir": "data path",
    "model.data.val_dir": "data path",
    "model.data.data_prefix": "data path",
    "model.model_config": "model path",
    "model.hf_model_name_or_path": "model path",
    "model.hf_access_token": "token",
    "model.tokenizer.model": "tokenizer path",
}


def flatten(tree: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted path, value) of every leaf; an empty mapping is a leaf."""
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            yield from flatten(value, path + ".")
        else:
            yield path, value


def awaiting_nova(name: str) -> bool:
    """Amazon Nova recipes are their own kind; the reference holds them before the catalog does."""
    return "/nova/" in name and name not in catalog.recipe_names()


@cache
def composed() -> dict[str, dict[str, Any]]:
    """name -> resolved top-level config, for every recipe of the reference in the catalog."""
    with catalog.Composer() as composer:
        return dict(composer.many([n for n in REFERENCE if n in catalog.recipe_names()]))


def reference_value(cfg: Mapping[str, Any], key: str, value: Any) -> Any:
    """HyperPod's value as a literal: an interpolation is resolved in our resolved config, so
    `${recipes.trainer.max_steps}` (HyperPod's spelling) and `${..trainer.max_steps}` (ours)
    compare equal. HyperPod's NeMo recipe refers to itself as `training.`, where it is placed."""
    if not (isinstance(value, str) and "${" in value):
        return value
    from omegaconf import OmegaConf

    from hyperpod_launcher.config import resolvers

    resolvers.register()
    tree = OmegaConf.create(dict(cfg))
    ours_spelling = value.replace("${training.", "${recipes.")
    OmegaConf.update(tree, f"recipes.{key}", ours_spelling, merge=False)
    return OmegaConf.select(tree, f"recipes.{key}")


def same(ours: Any, theirs: Any) -> bool:
    """Equal values of the same type (1 and 1.0 mean different things to Lightning)."""
    if isinstance(theirs, list) and isinstance(ours, list):
        return len(ours) == len(theirs) and all(map(same, ours, theirs))
    return type(ours) is type(theirs) and ours == theirs


def adapter_default(recipe: Mapping[str, Any], key: str) -> tuple[bool, Any]:
    """(known, value): what the adapter's schema gives `key` when a recipe leaves it out."""
    section, _, field = key.rpartition(".")
    if key == "model.max_position_embeddings":  # the schema fills it from max_context_width
        value = recipe["model"]["max_position_embeddings"]
        return True, value if value in (None, recipe["model"]["max_context_width"]) else None
    if key == "model.fp8" and not recipe["use_smp_model"]:
        return False, None  # the adapter reads fp8 only for SMP models
    defaults = ADAPTER_SECTIONS.get(section, {}).get("defaults", {})
    return (field in defaults), defaults.get(field)


def same_effect(ours: Any, default: Any) -> bool:
    """A literal our recipe sets has the schema default's effect (0 and 0.0 batches alike)."""
    if isinstance(ours, bool) or isinstance(default, bool) or ours is None or default is None:
        return ours is default
    return ours == default


def deviation(name: str, key: str) -> dict[str, Any] | None:
    rows = [r for r in DEVIATIONS if r["key"] == key and fnmatch.fnmatchcase(name, r["recipe"])]
    assert len(rows) <= 1, f"{name}: {key} is declared more than once"
    return rows[0] if rows else None


def problems(name: str) -> list[str]:
    """Every undeclared difference between our recipe and HyperPod's, one line each."""
    cfg = composed()[name]
    ours = dict(flatten(cfg["recipes"]))
    found = []
    for key, written in REFERENCE[name].items():
        row = deviation(name, key)
        theirs = reference_value(cfg, key, written)
        if row is not None:
            if not same(row["hyperpod"], theirs):
                found.append(f"{key}: table says HyperPod has {row['hyperpod']!r}, not {theirs!r}")
            where, declared = row.get("ours_key", key), reference_value(cfg, key, row["ours"])
            if where != key and key in ours:
                found.append(f"{key}: declared renamed to {where}, but still set")
            if where not in ours or not same(ours[where], declared):
                found.append(f"{where}: declared {declared!r}, resolves to {ours.get(where)!r}")
        elif key not in ours:
            found.append(f"{key}: missing (HyperPod: {theirs!r})")
        elif key not in PER_LAUNCH and not same(ours[key], theirs):
            found.append(f"{key}: ours {ours[key]!r}, HyperPod {theirs!r}")
    if recipe_checks.stack_of(cfg["recipes"]) != "adapter":
        return found
    renamed_to = {
        r["ours_key"]
        for r in DEVIATIONS
        if "ours_key" in r and fnmatch.fnmatchcase(name, r["recipe"])
    }
    for key, value in ours.items():
        known, default = adapter_default(cfg["recipes"], key)
        if key in REFERENCE[name] or not known or key in PER_LAUNCH or key in renamed_to:
            continue
        row = deviation(name, key)
        if row is not None:
            if not (row.get("absent") and same_effect(row["hyperpod"], default)):
                found.append(f"{key}: declared, but HyperPod leaves it at the default {default!r}")
            elif not same(value, row["ours"]):
                found.append(f"{key}: declared {row['ours']!r}, resolves to {value!r}")
        elif not same_effect(value, default):
            left_out = f"HyperPod leaves it out (adapter default {default!r})"
            found.append(f"{key}: ours {value!r}; {left_out}")
    return found


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_recipe_resolves_to_hyperpod_keys_and_values(name: str) -> None:
    if awaiting_nova(name):
        pytest.skip(f"{name}: Amazon Nova recipes are not in the catalog yet")
    assert name in catalog.recipe_names(), f"{name}: no recipe of this name"
    found = problems(name)
    assert not found, f"{name}:\n  " + "\n  ".join(found)


def test_every_declared_deviation_is_used() -> None:
    for row in DEVIATIONS:
        names = [n for n in REFERENCE if fnmatch.fnmatchcase(n, row["recipe"])]
        assert names, f"{row['recipe']}: matches no HyperPod recipe"
        unused = [n for n in names if (row["key"] in REFERENCE[n]) is bool(row.get("absent"))]
        assert not unused, f"{row['key']}: HyperPod's {unused} do not match the row"
        assert row["why"].strip(), f"{row['key']}: the table must say why"


def test_comparison_catches_a_changed_value_and_a_missing_key() -> None:
    name = "training/llama/hf_llama3_2_1b_seq8k_gpu_p5x1_pretrain"
    cfg = composed()[name]
    saved = cfg["recipes"]["model"]
    try:
        rope = {**saved["rope_scaling"], "factor": 8.0}
        cfg["recipes"]["model"] = {**saved, "rope_scaling": rope}
        del cfg["recipes"]["model"]["tie_word_embeddings"]
        found = problems(name)
    finally:
        cfg["recipes"]["model"] = saved
    assert "model.rope_scaling.factor: ours 8.0, HyperPod 32.0" in found
    assert "model.tie_word_embeddings: missing (HyperPod: True)" in found
    name = "training/llama/hf_llama3_2_11b_seq8k_gpu_p5x4_pretrain"
    cfg = composed()[name]
    cfg["recipes"]["model"]["offload_activations"] = True  # a key HyperPod's file leaves out
    try:
        found = problems(name)
    finally:
        cfg["recipes"]["model"]["offload_activations"] = False
    assert found == [
        "model.offload_activations: ours True; HyperPod leaves it out (adapter default False)"
    ]


def documented_table() -> str:
    """The deviation table as docs/recipes.md shows it, rendered from the data file."""
    lines = ["| recipe | key | HyperPod v1 | ours | why |", "|---|---|---|---|---|"]
    for row in DEVIATIONS:
        ours = json.dumps(row["ours"])
        if row.get("ours_key", row["key"]) != row["key"]:
            ours = f"`{row['ours_key']}`: {ours}"
        theirs = json.dumps(row["hyperpod"])
        if row.get("absent"):
            theirs = f"not set (adapter default: {theirs})"
        cells = [f"`{row['recipe']}`", f"`{row['key']}`", theirs, ours]
        lines.append("| " + " | ".join([*cells, " ".join(row["why"].split())]) + " |")
    return "\n".join(lines)


def test_the_docs_show_the_deviation_table() -> None:
    text = RECIPES_DOC.read_text()
    assert SECTION in text
    section = text.split(SECTION, 1)[1]
    section = re.split(r"\n#{2,3} ", section, maxsplit=1)[0]
    table = documented_table()
    assert table in section, "docs/recipes.md table differs; paste:\n" + table


CLI_CASES = {
    # A HyperPod Trainium fine-tuning launch line: its tokenizer and packing keys.
    "fine-tuning/llama/hf_llama3_8b_seq8k_trn1_fine_tuning": (
        ("recipes.data.tokenizer.type=/fsx/tokenizer", "recipes.data.packing=false"),
        {"data.tokenizer.type": "/fsx/tokenizer", "model_alignment_strategy.sft.packing": False},
    ),
    "training/llama/hf_llama3_2_1b_seq8k_gpu_p5x1_pretrain": (
        (),
        {"model.rope_scaling.factor": 32.0, "model.tie_word_embeddings": True},
    ),
}


@pytest.mark.parametrize("name", sorted(CLI_CASES))
def test_the_launch_writes_hyperpods_values(name: str, tmp_path: Path) -> None:
    overrides, expected = CLI_CASES[name]
    proc = run_launcher(
        f"recipes={name}",
        "recipes.run.name=fidelity",
        "cluster=slurm",
        f"base_results_dir={tmp_path}",
        "dry_run=true",
        *overrides,
    )
    assert proc.returncode == 0, proc.stderr
    written = yaml.safe_load((tmp_path / "fidelity" / "fidelity_hydra.yaml").read_text())
    assert {key: _get(written, key) for key in expected} == expected
