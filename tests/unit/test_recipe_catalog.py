"""The recipe catalog: every HyperPod recipe exists with its published facts, by composition.

The facts table is tests/fixtures/recipe_catalog.md (model, scale, parallelism, batch, method
per recipe). Recipes are composed once, in batches (catalog.Composer.many); one test proves that
the batched composition gives exactly what `python main.py recipes=<name>` composes.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest

from hyperpod_launcher.catalog import recipes as catalog
from hyperpod_launcher.spec import recipe_checks
from hyperpod_launcher.util import resources
from tests.conftest import REPO

FACTS = REPO / "tests" / "fixtures" / "recipe_catalog.md"
COLUMNS = (
    *("recipe", "model_type", "nodes", "devices", "seq", "layers", "hidden", "heads"),
    *("kv_heads", "ffn", "vocab", "parallelism", "fp8", "other", "hf_model"),
)
BASE = ("cluster=slurm",)


def catalog_rows() -> dict[str, dict[str, str]]:
    rows = {}
    for line in FACTS.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != len(COLUMNS) or cells[0] in ("recipe", "---"):
            continue
        rows[cells[0]] = dict(zip(COLUMNS, cells, strict=True))
    return rows


ROWS = catalog_rows()


@pytest.fixture(scope="module")
def composed() -> dict[str, dict[str, Any]]:
    with catalog.Composer() as composer:
        return dict(composer.many(catalog.recipe_names(), BASE))


def get(data: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        data = data[part]
    return data


def num(text: str) -> int | None:
    return int(text) if text else None


def parallel(text: str) -> dict[str, str]:
    """'TP2 shard64 CP EP1 experts=8 top2' -> {'TP': '2', 'shard': '64', 'CP': '', ...}."""
    found = {}
    for token in text.split():
        match = re.match(r"^(TP|PP|CP|EP|shard|experts=|top|zero1=)(.*)$", token)
        assert match, token
        found[match.group(1).rstrip("=")] = match.group(2)
    return found


def other(text: str) -> dict[str, str]:
    return dict(t.split("=", 1) if "=" in t else (t, "") for t in text.split())


def test_the_catalog_has_47_recipes_and_each_exists() -> None:
    assert len(ROWS) == 47
    missing = sorted(set(ROWS) - set(catalog.recipe_names()))
    assert not missing, missing


@pytest.mark.parametrize("name", sorted(ROWS))
def test_recipe_matches_the_catalog_facts(name: str, composed: dict[str, Any]) -> None:
    row, recipe = ROWS[name], composed[name]["recipes"]
    assert get(recipe, "trainer.num_nodes") == int(row["nodes"])
    assert get(recipe, "trainer.devices") == int(row["devices"])
    par, extra = parallel(row["parallelism"]), other(row["other"])
    instance = "p4d.24xlarge" if "p4_" in name else "p5.48xlarge"
    if row["model_type"] == "neuron-hf":
        assert get(recipe, "run.model_type") == "neuron-hf"
        assert get(recipe, "run.instance_type") == "trn1.32xlarge"
        assert get(recipe, "model.encoder_seq_length") == int(row["seq"])
        assert get(recipe, "model.num_layers") == int(row["layers"])
        assert get(recipe, "model.hidden_size") == int(row["hidden"])
        strategy = recipe["distributed_strategy"]
        assert strategy["tensor_model_parallel_size"] == int(par["TP"])
        assert strategy["pipeline_model_parallel_size"] == int(par["PP"])
        assert strategy["zero1"] is (par["zero1"] == "True")
        assert get(recipe, "data.micro_batch_size") == int(extra["mbs"])
        assert get(recipe, "data.global_batch_size") == int(extra["gbs"])
        return
    assert get(recipe, "run.instance_type") == instance
    if row["model_type"] == "nemo":
        assert get(recipe, "run.model_type") == "nemo"
        return
    model = recipe["model"]
    assert get(recipe, "run.model_type") == "hf"
    assert model["model_type"] == row["model_type"]
    assert model["max_context_width"] == int(row["seq"])
    assert model["max_position_embeddings"] in (int(row["seq"]), None)
    for column, key in (
        ("layers", "num_hidden_layers"),
        ("hidden", "hidden_size"),
        ("heads", "num_attention_heads"),
        ("kv_heads", "num_key_value_heads"),
        ("ffn", "intermediate_size"),
        ("vocab", "vocab_size"),
    ):
        assert model.get(key) == num(row[column]), key
    assert model["tensor_model_parallel_degree"] == (num(par["TP"]) or 1)
    assert model["shard_degree"] == int(par["shard"])
    assert model["context_parallel_degree"] == (num(par["CP"]) or 1)
    assert model["expert_model_parallel_degree"] == (num(par["EP"]) or 1)
    if "experts" in par:
        assert model["moe"] is True
        assert model["num_local_experts"] == int(par["experts"])
        assert model["num_experts_per_tok"] == int(par["top"])
    assert model["fp8"] is (row["fp8"] == "fp8")
    assert model["train_batch_size"] == int(extra["bs"])
    assert recipe["use_smp_model"] is (extra["smp"] == "True")
    if extra["delayed"]:
        assert model["delayed_param"] is (extra["delayed"] == "True")
    assert model["activation_checkpointing"] is (extra["ckpt_act"] == "True")
    assert model["do_finetune"] is ("finetune" in extra)
    peft = next((p for p in ("lora", "qlora_4bit") if p in extra), None)
    assert model["peft"]["peft_type"] == peft
    if peft:
        assert (model["peft"]["rank"], model["peft"]["alpha"], model["peft"]["dropout"]) == (
            int(extra["r"]),
            int(extra["a"]),
            float(extra["d"]),
        )
    assert model.get("multi_modal", False) is ("multimodal" in extra)
    assert model["hf_model_name_or_path"] == (row["hf_model"] or None)
    if model["model_type"] == "llama_v3" and model["num_hidden_layers"]:
        assert model["rope_theta"] == 500000.0
        # Llama 3.2 1B/3B: rope factor 32 and tied embeddings, as their published configs
        small = "llama3_2_1b" in name or "llama3_2_3b" in name
        assert model.get("tie_word_embeddings", False) is small
        assert model["rope_scaling"] == {
            "rope_type": "llama3",
            "factor": 32.0 if small else 8.0,
            "high_freq_factor": 4.0,
            "low_freq_factor": 1.0,
            "original_max_position_embeddings": 8192,
        }


def test_every_recipe_passes_its_own_checks(composed: dict[str, Any]) -> None:
    for cfg in composed.values():
        if cfg.get("recipes") is None:
            continue  # custom-script example
        recipe = copy.deepcopy(cfg["recipes"])
        if recipe_checks.stack_of(recipe) == "nova":  # sized by run.replicas on p5.48xlarge
            recipe.setdefault(
                "trainer", {"num_nodes": recipe["run"].get("replicas", 1), "devices": 8}
            )
        nodes, devices = recipe["trainer"]["num_nodes"], recipe["trainer"]["devices"]
        if recipe_checks.stack_of(recipe) in ("adapter", "open"):
            # fine-tuning recipes without a model name get one from HF_MODEL_NAME_OR_PATH
            model = recipe["model"]
            model["hf_model_name_or_path"] = model["hf_model_name_or_path"] or "/fsx/models/x"
        if recipe_checks.stack_of(recipe) == "open":  # TRAIN_DIR in the launch scripts
            recipe["model"]["data"]["train_dir"] = "/fsx/data/train"
        recipe_checks.check(recipe, nodes=nodes, devices=devices)


def test_falcon_at_four_nodes_passes_the_parallel_math(composed: dict[str, Any]) -> None:
    # The catalog's own Falcon launch script runs it on 4 nodes: shard 16 of 32 GPUs.
    recipe = composed["training/custom_model/falcon"]["recipes"]
    layout = recipe_checks.check(recipe, nodes=4, devices=8)
    assert layout.degrees["shard"] == 16 and "2 replicas" in layout.notes


def test_trainium_llama2_70b_continued_pretraining(composed: dict[str, Any]) -> None:
    recipe = composed["training/llama/hf_llama2_70b_seq4k_trn1x32_continued_pretrain"]["recipes"]
    assert recipe["run"]["model_type"] == "neuron-hf"
    assert (recipe["trainer"]["num_nodes"], recipe["trainer"]["devices"]) == (32, 32)
    assert recipe["trainer"]["max_steps"] == 1500
    assert recipe["run"]["time_limit"] == "2-00:00:00"
    assert recipe["model"]["encoder_seq_length"] == 4096
    assert (recipe["model"]["num_layers"], recipe["model"]["hidden_size"]) == (80, 8192)
    assert recipe["data"]["global_batch_size"] == 512
    layout = recipe_checks.check(recipe, nodes=32, devices=32)
    assert layout.degrees == {"TP": 8, "PP": 8, "DP": 16}
    # 512 / 16 = 32 pipeline microbatches of one sample
    assert "global batch 512 = micro 1 x DP 16 x 32 steps" in layout.notes


def test_generic_hf_recipes_fine_tune_any_model(composed: dict[str, Any]) -> None:
    for method, peft in (("fine_tuning", None), ("lora", "lora"), ("qlora", "qlora_4bit")):
        recipe = composed[f"fine-tuning/hf/hf_causal_lm_gpu_{method}"]["recipes"]
        assert recipe["model"]["do_finetune"] is True
        assert recipe["model"]["peft"]["peft_type"] == peft
        assert recipe["model"]["hf_model_name_or_path"] is None  # the user names it
        assert recipe["run"]["entry_script"] == "examples/custom_model/custom_pretrain.py"
        assert recipe["model"]["shard_degree"] == 8  # nodes x devices


def test_recipe_files_are_short_compositions() -> None:
    """Shared pieces live in _base/ config groups; a recipe file only says what differs."""
    root = resources.recipes_dir()
    for name in catalog.recipe_names():
        text = (root / f"{name}.yaml").read_text()
        if "/recipes/_base/" in text:
            assert len(text.splitlines()) <= 45, name
    assert catalog.is_global("custom_script/allreduce_smoke")
    assert not any(n.startswith("_base/") for n in catalog.recipe_names())


def test_batched_composition_equals_main_py_composition(composed: dict[str, Any]) -> None:
    """The catalog-wide fast path is exactly the per-recipe compose a launch does."""

    def has_trainer(name: str) -> bool:  # custom-script examples and Nova recipes have none
        return not catalog.is_global(name) and "trainer" in (composed[name]["recipes"] or {})

    overrides = ("cluster=slurm", "recipes.trainer.max_steps=7")
    with catalog.Composer() as composer:
        batched = dict(
            composer.many(
                catalog.recipe_names(),
                overrides[:1],
                {n: overrides[1:] for n in catalog.recipe_names() if has_trainer(n)},
            )
        )
        for name in catalog.recipe_names():
            extra = overrides[1:] if has_trainer(name) else ()
            assert batched[name] == composer.one(name, (*overrides[:1], *extra)), name


def test_recipe_code_and_entry_defaults(composed: dict[str, Any]) -> None:
    def git(name: str) -> str | None:
        return composed[name]["git"]["repo_url_or_path"]

    adapter = "https://github.com/aws/sagemaker-hyperpod-training-adapter-for-nemo.git"
    assert git("training/llama/hf_llama3_8b_seq8k_gpu_p5x16_pretrain") == adapter
    assert git("training/llama/hf_llama3_8b_seq8k_trn1x4_pretrain").endswith(
        "aws-neuron/neuronx-distributed-training.git"
    )
    assert git("training/llama/megatron_llama3_1_8b_nemo") is None
    ds = "fine-tuning/deepspeed/hf_llama3_8b_seq8k_gpu_zero2"
    assert git(ds) is None
    entry = composed[ds]["recipes"]["run"]["entry_script"]
    assert Path(entry).is_file() and entry.endswith("examples/open_ft.py")
