"""launcher_scripts/<family>/run_<recipe>.sh: one per recipe, written by the one generator, never
stale, bash -n and shellcheck clean, and each runs as a dry run with the users' placeholders."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from hyperpod_launcher.catalog import launch_scripts as gen_launch_scripts
from hyperpod_launcher.catalog import recipes as catalog
from hyperpod_launcher.launch.compose import plan
from hyperpod_launcher.launch.execute import execute
from tests.conftest import REPO, shellcheck

TOKEN = "hf_launch_script_token_not_real"
PLACEHOLDERS = {
    "TRAIN_DIR": "/fsx/data/train",
    "VAL_DIR": "s3://training-bucket/val",
    "EXP_DIR": "/fsx/exp",
    "HF_MODEL_NAME_OR_PATH": "/fsx/models/base",
    "HF_ACCESS_TOKEN": TOKEN,
}
# Records main.py's arguments instead of running it: PYTHON=<this> bash run_<recipe>.sh
RECORDER = """#!/bin/bash
printf '%s\\0' "$@" > "$RECORD_TO"
printf 'HF_TOKEN=%s\\0' "${HF_TOKEN-}" >> "$RECORD_TO"
"""


@pytest.fixture(scope="module")
def scripts() -> dict[str, str]:
    return gen_launch_scripts.generate()


def test_every_recipe_has_a_script_and_none_is_stale(scripts: dict[str, str]) -> None:
    assert sorted(scripts) == sorted(
        gen_launch_scripts.script_path(n) for n in catalog.recipe_names()
    )
    problems = gen_launch_scripts.stale(REPO, scripts)
    assert not problems, (
        f"stale launch scripts {problems}: run `python -m hyperpod_launcher.catalog.launch_scripts`"
    )
    for rel in scripts:
        assert os.access(REPO / rel, os.X_OK), rel


def test_check_mode_finds_edited_missing_and_leftover_scripts(
    scripts: dict[str, str], tmp_path: Path
) -> None:
    gen_launch_scripts.write(tmp_path, scripts)
    assert gen_launch_scripts.stale(tmp_path, scripts) == []
    edited, removed = sorted(scripts)[:2]
    (tmp_path / edited).write_text("#!/bin/bash\necho hand-edited\n")
    (tmp_path / removed).unlink()
    leftover = tmp_path / "launcher_scripts" / "llama" / "run_gone.sh"
    leftover.write_text("#!/bin/bash\n")
    expected = sorted([edited, removed, "launcher_scripts/llama/run_gone.sh"])
    assert gen_launch_scripts.stale(tmp_path, scripts) == expected
    assert gen_launch_scripts.main(["--check", "--root", str(tmp_path)]) == 1
    gen_launch_scripts.write(tmp_path, scripts)
    assert not leftover.exists()
    assert gen_launch_scripts.main(["--check", "--root", str(tmp_path)]) == 0


def test_scripts_pass_bash_n_and_shellcheck(scripts: dict[str, str]) -> None:
    paths = [str(REPO / rel) for rel in scripts]
    proc = subprocess.run(
        ["bash", "-c", 'for f; do bash -n "$f" || exit 1; done', "bash-n", *paths],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    shellcheck(*paths)


def record_argv(script: Path, tmp_path: Path, env: dict[str, str], *extra: str) -> list[str]:
    recorder = tmp_path / "python-recorder"
    recorder.write_text(RECORDER)
    recorder.chmod(0o755)
    out = tmp_path / f"{script.stem}.argv"
    proc = subprocess.run(
        ["bash", str(script), *extra],
        env={"PATH": os.environ["PATH"], "PYTHON": str(recorder), "RECORD_TO": str(out), **env},
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return out.read_text().split("\0")[:-1]


def test_every_script_runs_as_a_dry_run(
    scripts: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each script's exact command line, run through the launcher: a complete job folder."""
    results = tmp_path / "results"
    env = {**PLACEHOLDERS, "CLUSTER": "slurm", "BASE_RESULTS_DIR": str(results)}
    monkeypatch.setenv("HF_TOKEN", TOKEN)  # what the script exports for main.py
    with catalog.Composer() as composer:
        composed = dict(composer.many(catalog.recipe_names()))
    for name in catalog.recipe_names():
        path = gen_launch_scripts.script_path(name)
        takes_token = "HF_ACCESS_TOKEN" in scripts[path]
        # Nova recipes run only on k8s, in the image the user names
        cluster, extra = (
            ("k8s", ["container=example.com/nova:1"]) if "/nova/" in name else ("slurm", [])
        )
        main_py, *overrides, token_env = record_argv(
            REPO / path, tmp_path, {**env, "CLUSTER": cluster}, *extra, "dry_run=true"
        )
        assert main_py == str(REPO / "main.py")
        assert token_env == f"HF_TOKEN={TOKEN if takes_token else ''}"
        assert not any(TOKEN in arg for arg in overrides), name  # never in argv
        assert overrides[0] == f"recipes={name}" and f"cluster={cluster}" in overrides
        assert overrides[-1] == "dry_run=true"  # "$@" comes last
        recipe = composed[name].get("recipes")
        if recipe is not None:
            expected = gen_launch_scripts.placeholder_overrides(recipe, PLACEHOLDERS)
            assert overrides[-1 - len(extra) - len(expected) : -1 - len(extra)] == expected, name
        launch = plan(overrides, launch_id="script")
        assert execute(launch, overrides, say=lambda _: None) == 0
        job_dir = Path(launch.spec.job_dir)
        record = json.loads((job_dir / "job.json").read_text())
        assert record["submit"]["status"] == "dry_run"
        if recipe is not None:
            written = yaml.safe_load((job_dir / launch.spec.recipe_file).read_text())
            nemo_data = (written.get("model") or {}).get("data") or {}
            if "data_prefix" in nemo_data:  # TRAIN_DIR means real data, not NeMo's mock data
                assert nemo_data["data_impl"] == "mmap", name
            if takes_token:
                assert launch.spec.secret_env == ("HF_TOKEN",), name
                assert written["model"]["hf_access_token"] == "${oc.env:HF_TOKEN,null}"
    for path in results.rglob("*"):
        if path.is_file():
            assert TOKEN not in path.read_text(errors="replace"), path


def test_a_script_end_to_end_keeps_the_token_out_of_argv_and_files(tmp_path: Path) -> None:
    script = REPO / gen_launch_scripts.script_path("fine-tuning/hf/hf_causal_lm_gpu_qlora")
    proc = subprocess.run(
        ["bash", str(script), "dry_run=true", "recipes.trainer.max_steps=7"],
        env={
            **os.environ,
            **PLACEHOLDERS,
            "BASE_RESULTS_DIR": str(tmp_path),
            "HF_MODEL_NAME_OR_PATH": "Qwen/Qwen2.5-0.5B",
            "PYTHON": sys.executable,
        },
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    job_dir = tmp_path / "hf-causal-lm-qlora"
    recipe = yaml.safe_load((job_dir / "hf-causal-lm-qlora_hydra.yaml").read_text())
    assert recipe["model"]["hf_model_name_or_path"] == "Qwen/Qwen2.5-0.5B"
    assert recipe["model"]["peft"]["peft_type"] == "qlora_4bit"
    assert recipe["trainer"]["max_steps"] == 7
    assert recipe["model"]["data"]["val_dir"] == "s3://training-bucket/val"
    assert (
        "recipes.model.hf_access_token=${oc.env:HF_TOKEN}"
        in (job_dir / "launcher_cmd.log").read_text()
    )
    for path in job_dir.rglob("*"):
        if path.is_file():
            assert TOKEN not in path.read_text(errors="replace"), path
    assert TOKEN not in proc.stdout + proc.stderr


def test_scripts_select_cluster_and_instance_explicitly(scripts: dict[str, str]) -> None:
    text = scripts[
        gen_launch_scripts.script_path("training/llama/hf_llama3_8b_seq8k_trn1x4_pretrain")
    ]
    assert '"cluster=${CLUSTER:-slurm}"' in text
    assert '"instance_type=${INSTANCE_TYPE:-trn1.32xlarge}"' in text
    assert "recipes.run.name=llama3-8b-seq8k-trn1x4-pretrain" in text
    assert "recipes.data.train_dir=$TRAIN_DIR" in text  # the Neuron layout's key
    assert "HF_ACCESS_TOKEN" not in text  # no token key in that recipe


def test_placeholders_follow_the_recipe_keys() -> None:
    nemo = {"model": {"data": {"data_prefix": []}}, "exp_manager": {"exp_dir": None}}
    assert gen_launch_scripts.placeholder_overrides(nemo, PLACEHOLDERS) == [
        "recipes.model.data.data_prefix=[/fsx/data/train]",
        "recipes.model.data.data_impl=mmap",  # NeMo's default is mock data
        "recipes.exp_manager.exp_dir=/fsx/exp",
    ]
    pretrain: dict[str, Any] = {"model": {"do_finetune": False, "hf_model_name_or_path": None}}
    assert gen_launch_scripts.placeholder_overrides(pretrain, PLACEHOLDERS) == []
