"""`hyperpod-launch recipes list|show`: filters, resolved YAML, one-line errors, no cloud SDK."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from hyperpod_launcher.catalog import recipes as catalog
from hyperpod_launcher.cli import main as cli
from tests.conftest import REPO

L8B = "training/llama/hf_llama3_8b_seq8k_gpu_p5x16_pretrain"


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("xdg-cache")


@pytest.fixture
def run_cli(
    cache_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Any:
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache_dir))

    def run(*argv: str) -> tuple[int, str, str]:
        code = cli.main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return run


def listed(run_cli: Any, *filters: str) -> list[dict[str, Any]]:
    code, out, _ = run_cli("recipes", "list", "--json", *filters)
    assert code == 0
    return json.loads(out)


def test_recipes_is_a_cli_command() -> None:
    assert "recipes" in cli.COMMANDS


def test_list_shows_every_recipe_with_its_scale(run_cli: Any) -> None:
    rows = {r["name"]: r for r in listed(run_cli)}
    assert set(rows) == set(catalog.recipe_names())
    row = rows[L8B]
    assert (row["family"], row["method"], row["stack"], row["accelerator"]) == (
        "llama",
        "pretrain",
        "adapter",
        "gpu",
    )
    assert (row["instance_type"], row["nodes"], row["devices"]) == ("p5.48xlarge", 16, 8)
    assert row["parallelism"] == "TP2 shard64 CP1 EP1, fp8"
    assert not [r for r in rows.values() if r["parallelism"].startswith("invalid")]


def test_list_table_has_a_header_and_a_row_per_recipe(run_cli: Any) -> None:
    code, out, err = run_cli("recipes", "list", "--family", "mixtral")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["RECIPE", "METHOD", "ACCEL"]
    assert len(lines) == 1 + 10
    assert err.strip() == f"10 of {len(catalog.recipe_names())} recipes"


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (("--method", "qlora"), {"qlora"}),
        (("--accelerator", "neuron"), {"neuron"}),
        (("--instance", "ml.p4d.24xlarge"), {"p4d.24xlarge"}),
        (("--family", "deepspeed"), {"open"}),
    ],
)
def test_list_filters(run_cli: Any, filters: tuple[str, str], expected: set[str]) -> None:
    field = {
        "--method": "method",
        "--accelerator": "accelerator",
        "--instance": "instance_type",
        "--family": "stack",
    }[filters[0]]
    rows = listed(run_cli, *filters)
    assert rows and {r[field] for r in rows} == expected


def test_list_combines_filters(run_cli: Any) -> None:
    rows = listed(run_cli, "--family", "llama", "--method", "lora", "--instance", "p5.48xlarge")
    assert {r["name"] for r in rows} == {
        "fine-tuning/llama/hf_llama3_3_70b_seq16k_gpu_lora",
        "fine-tuning/llama/hf_llama3_3_70b_seq8k_gpu_lora",
        "fine-tuning/llama/hf_llama4_17b_16e_seq4k_gpu_lora_multimodal_finetuning",
        "fine-tuning/llama/hf_llama4_17b_16e_seq4k_gpu_lora_text_to_text",
        "fine-tuning/llama/hf_llama4_17b_16e_seq8k_gpu_lora_multimodal_finetuning",
        "fine-tuning/llama/hf_llama4_17b_16e_seq8k_gpu_lora_text_to_text",
        "fine-tuning/llama/hf_llama3_405b_seq16k_gpu_lora",
        "fine-tuning/llama/hf_llama3_405b_seq8k_gpu_lora",
        "fine-tuning/llama/hf_llama3_70b_seq16k_gpu_lora",
        "fine-tuning/llama/hf_llama3_70b_seq8k_gpu_lora",
        "fine-tuning/llama/hf_llama3_8b_seq16k_gpu_lora",
        "fine-tuning/llama/hf_llama3_8b_seq8k_gpu_lora",
    }


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (("--family", "lama"), "--family=lama: unknown (did you mean 'llama'?)"),
        (("--method", "sfx"), "--method=sfx: unknown (did you mean 'sft'?)"),
        (("--peft", "lorra"), "--peft=lorra: unknown (did you mean 'lora' or 'qlora'?)"),
        (("--accelerator", "tpu"), "allowed: gpu, neuron"),
        (("--instance", "p5.48xlarg"), "(did you mean 'p5.48xlarge'"),
    ],
)
def test_list_bad_filter_is_one_line_exit_2(
    run_cli: Any, argv: tuple[str, str], fragment: str
) -> None:
    code, out, err = run_cli("recipes", "list", *argv)
    assert code == 2 and not out
    assert err.count("\n") == 1 and err.startswith("error: ") and fragment in err, err


def test_show_prints_facts_then_the_resolved_recipe(run_cli: Any) -> None:
    code, out, _ = run_cli("recipes", "show", L8B, "recipes.model.hf_access_token=hf_secret_x")
    assert code == 0
    header = [line for line in out.splitlines() if line.startswith("# ")]
    assert "# nodes:       16 x 8 devices = world 128" in header
    assert "# parallelism: TP2 shard64 CP1 EP1, fp8" in header
    assert "# checks:      ok on p5.48xlarge" in header
    recipe = yaml.safe_load(out)  # the header is YAML comments: the output is the recipe
    with catalog.Composer() as composer:
        expected = composer.one(L8B)["recipes"]
    expected["model"]["hf_access_token"] = "${oc.env:HF_TOKEN,null}"
    assert recipe == expected
    assert "hf_secret_x" not in out


def test_show_applies_overrides_and_reports_what_does_not_fit(run_cli: Any) -> None:
    code, out, _ = run_cli("recipes", "show", f"recipes={L8B}.yaml", "recipes.trainer.num_nodes=4")
    assert code == 0
    assert "# parallelism: does not fit (see checks)" in out
    assert "# checks:      fails: recipes.model.shard_degree=64" in out
    assert yaml.safe_load(out)["trainer"]["num_nodes"] == 4


def _leaves(data: dict[str, Any], path: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict) and value:
            out |= _leaves(value, f"{path}.{key}")
        else:
            out[f"{path}.{key}"] = value
    return out


def test_show_schema_gives_each_key_its_value_and_the_rule_a_launch_checks(
    run_cli: Any, tmp_path: Path
) -> None:
    code, out, _ = run_cli("recipes", "show", "--schema", L8B, "+recipes.model.my_knob=3")
    assert code == 0
    assert "after each key (hyperpod-launch schema stack/adapter)\n" in out
    rules = dict(line.split("  # ", 1) for line in out.splitlines() if "  # " in line)
    shown = yaml.safe_load(out)  # still YAML: `key: value`, the rule a comment
    with catalog.Composer() as composer:
        recipe = composer.one(L8B, ["+recipes.model.my_knob=3"])["recipes"]
    flat = {}  # a mapping the schema does not describe key by key shows whole
    for key, value in shown.items():
        flat |= _leaves(value, key) if isinstance(value, dict) and value else {key: value}
    assert flat == _leaves(recipe, "recipes")  # every key, with its value
    line = "recipes.model.train_batch_size: 2"
    assert rules[line] == "int >= 1"
    assert rules["recipes.trainer.max_steps: 50"] == "int >= 1"
    assert rules["recipes.model.optim.name: adamw"] == "one of 'adamw'"
    assert rules["recipes.model.my_knob: 3"] == "added with +, no rule"
    # The same words a launch's error uses for a value outside the rule:
    proc = subprocess.run(
        [sys.executable, str(REPO / "main.py"), f"recipes={L8B}", "cluster=slurm",
         "recipes.model.train_batch_size=0", f"base_results_dir={tmp_path}", "dry_run=true"],
        capture_output=True, text=True, check=False,
        env={**os.environ, "HPL_STATE_DIR": str(tmp_path / "s"),
             "XDG_CACHE_HOME": str(tmp_path / "c")},
    )  # fmt: skip
    assert f"expected {rules[line]}, got 0" in proc.stderr


def test_show_schema_of_a_custom_script(run_cli: Any) -> None:
    code, out, _ = run_cli("recipes", "show", "custom_script/allreduce_smoke", "--schema")
    assert code == 0
    assert "after each key (hyperpod-launch schema stack/custom)\n" in out
    assert "training_cfg.run.name: null  # str or null" in out  # named after the script


def test_show_takes_overrides_after_its_flag_and_refuses_an_unknown_one(run_cli: Any) -> None:
    code, out, _ = run_cli("recipes", "show", L8B, "--schema", "recipes.trainer.num_nodes=4")
    assert code == 0
    assert "recipes.trainer.num_nodes: 4  # int >= 1" in out
    for extra in (["--bogus"], ["recipes.trainer.num_nodes=4", "--bogus"]):
        with pytest.raises(SystemExit) as usage:  # argparse's usage error
            run_cli("recipes", "show", L8B, "--schema", *extra)
        assert usage.value.code == 2


def test_show_custom_script_example(run_cli: Any) -> None:
    code, out, _ = run_cli("recipes", "show", "custom_script/allreduce_smoke")
    assert code == 0
    run = yaml.safe_load(out)["training_cfg"]["run"]
    assert run["name"] is None and run["ntasks_per_node"] is None  # from the script, instance


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        ((L8B.replace("pretrain", "pretrian"),), f"did you mean '{L8B}'"),
        ((L8B, "recipes.model.nope=1"), "unknown key 'recipes.model.nope'"),
        ((L8B, "recipes.trainer.num_nodes"), "overrides look like key=value"),
    ],
)
def test_show_errors_are_one_line_exit_2(
    run_cli: Any, argv: tuple[str, ...], fragment: str
) -> None:
    code, out, err = run_cli("recipes", "show", *argv)
    assert code == 2 and not out
    assert err.count("\n") == 1 and fragment in err, err


def test_recipes_commands_load_no_cloud_sdk(tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "from hyperpod_launcher.cli import main as cli\n"
        "assert cli.main(['recipes', 'list']) == 0\n"
        f"assert cli.main(['recipes', 'show', '{L8B}']) == 0\n"
        "sdks = ('boto3', 'botocore', 'sagemaker', 'kubernetes')\n"
        "loaded = [m for m in sdks if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        env={"XDG_CACHE_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert list(tmp_path.glob("hyperpod-launcher/catalog-*.json"))  # the list cache was written


def test_console_entry_reaches_the_recipes_command(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "hyperpod_launcher", "recipes", "list", "--method", "qlora"],
        cwd=tmp_path,
        env={"XDG_CACHE_HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "fine-tuning/hf/hf_causal_lm_gpu_qlora" in proc.stdout
