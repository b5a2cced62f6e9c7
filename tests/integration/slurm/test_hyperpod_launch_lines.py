"""A launch line copied from any of SageMaker HyperPod's 46 v1 recipe launch scripts renders on
Slurm without edits: no cluster= (Slurm is the default), `recipes=<name>.yaml` where the script
writes it, and every key the script sets. The lines are facts kept in
tests/fixtures/hyperpod_v1_launch_lines.json (with the source commit); the test fills in the
shell variables a user would set and adds dry_run=true.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import REPO, run_launcher

FIXTURE = json.loads((REPO / "tests" / "fixtures" / "hyperpod_v1_launch_lines.json").read_text())
SCRIPTS = FIXTURE["scripts"]


def user_values(tmp_path: Path) -> dict[str, str]:
    """What a user exports before running a HyperPod launch script."""
    return {
        "${SAGEMAKER_TRAINING_LAUNCHER_DIR}": str(tmp_path / "launcher"),
        "$EXP_DIR": str(tmp_path / "exp"),
        "$TRAIN_DIR": str(tmp_path / "data" / "train"),
        "$VAL_DIR": str(tmp_path / "data" / "val"),
        "$HF_MODEL_NAME_OR_PATH": str(tmp_path / "models" / "base"),
        "$HF_ACCESS_TOKEN": "hf_launch_line_test_token",
        "$COMPILE": "0",
        "$COMPILER_CACHE_PATH": str(tmp_path / "neuron_cache"),
        "$TOKENIZER_TYPE": str(tmp_path / "models" / "tokenizer"),
        "$MODEL_CONFIG": str(tmp_path / "models" / "config.json"),
        "$RESUME_FROM_CHECKPOINT_DIR": str(tmp_path / "exp" / "checkpoints"),
    }


def fill(arg: str, values: dict[str, str]) -> str:
    for name, value in values.items():
        arg = arg.replace(name, value)
    assert "$" not in arg, f"no test value for a variable in {arg!r}"
    return arg


def test_the_fixture_holds_every_v1_recipe_script() -> None:
    assert FIXTURE["source"].startswith("aws/sagemaker-hyperpod-recipes@0a556d9")
    assert len(SCRIPTS) == 46
    assert all(a.split("=")[0] != "cluster" for args in SCRIPTS.values() for a in args)


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_launch_line_renders_on_slurm(script: str, tmp_path: Path) -> None:
    values = user_values(tmp_path)
    args = [fill(a, values) for a in SCRIPTS[script]]
    proc = run_launcher(
        *args,
        "dry_run=true",
        env={
            "HYDRA_FULL_ERROR": "1",  # as the scripts run it
            "HPL_STATE_DIR": str(tmp_path / "state"),
            "XDG_CACHE_HOME": str(tmp_path / "cache"),
        },
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    first = proc.stdout.splitlines()[0]
    assert first.startswith("slurm job ") and "(cluster=slurm: default" in first, first
    name = next(a.split("=", 1)[1] for a in args if a.startswith("recipes.run.name="))
    job_dir = tmp_path / "launcher" / "results" / name
    assert (job_dir / f"sagemaker-{name}_submission.sh").is_file()
    assert (job_dir / f"{name}_hydra.yaml").is_file()
