"""Every launch line of SageMaker HyperPod's final v1 release (v1.5.1, 119 launch scripts) renders
without edits: no cluster= (Slurm is the default), `recipes=<name>.yaml` where a script writes
it, every key the script sets, the custom-script line's `--config-path`/`--config-name`, and
HYDRA_FULL_ERROR=1 as every script sets it. The lines are facts kept in
tests/fixtures/hyperpod_v1_launch_lines.json (with the source commit); the test fills in the
shell variables a user would set and adds dry_run=true. Amazon Nova's lines run on Kubernetes
(HyperPod runs Nova only there), so they get cluster=k8s.

The lines run in-process, in batches, in one child process per batch (a Hydra compose per line
is what a launch costs; a Python start per line would double it). The HF token a line passes
must reach no file the launch writes and nothing it prints.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO

FIXTURE = json.loads((REPO / "tests" / "fixtures" / "hyperpod_v1_launch_lines.json").read_text())
SCRIPTS: dict[str, list[str]] = dict(FIXTURE["scripts"])
TOKEN = "hf_launch_line_test_token"
BATCH = 40
RECIPES = REPO / "recipes_collection" / "recipes"


def user_values(launcher_dir: Path) -> dict[str, str]:
    """What a user exports (or leaves at the script's own default) before a launch script."""
    root = launcher_dir.parent
    return {
        "${SAGEMAKER_TRAINING_LAUNCHER_DIR}": str(launcher_dir),
        "$EXP_DIR": str(root / "exp"),
        "$TRAIN_DIR": str(root / "data" / "train"),
        "$VAL_DIR": str(root / "data" / "val"),
        "$HF_MODEL_NAME_OR_PATH": str(root / "models" / "base"),
        "$HF_ACCESS_TOKEN": TOKEN,
        "$COMPILE": "0",
        "$COMPILER_CACHE_PATH": str(root / "neuron_cache"),
        "$TOKENIZER_TYPE": str(root / "models" / "tokenizer"),
        "$MODEL_CONFIG": str(root / "models" / "config.json"),
        "$RESUME_FROM_CHECKPOINT_DIR": str(root / "exp" / "checkpoints"),
        "<mycontainer>": "registry.example.com/team/pytorch:24.01",  # the script's placeholder
    }


def fill(arg: str, values: dict[str, str]) -> str:
    for name, value in values.items():
        arg = arg.replace(name, value)
    assert "$" not in arg and "<" not in arg, f"no test value for a variable in {arg!r}"
    return arg


def recipe_of(args: list[str]) -> str | None:
    return next((a.split("=", 1)[1] for a in args if a.startswith("recipes=")), None)


def is_nova(script: str) -> bool:
    return "/nova/" in script


def awaiting_nova(script: str) -> bool:
    """Amazon Nova's recipes are their own kind; their lines run once the catalog has them."""
    recipe = recipe_of(SCRIPTS[script]) or ""
    return is_nova(script) and not (RECIPES / f"{recipe.removesuffix('.yaml')}.yaml").is_file()


def command_line(script: str, launcher_dir: Path) -> list[str]:
    args = [fill(a, user_values(launcher_dir)) for a in SCRIPTS[script]]
    # Nova: on k8s, with the Nova image a user names (HyperPod's lines leave it to its values)
    nova = ["cluster=k8s", "container=example.com/nova:1"] if is_nova(script) else []
    return [*args, *nova, "dry_run=true"]


def launcher_checkout(root: Path) -> Path:
    """SAGEMAKER_TRAINING_LAUNCHER_DIR: the launcher's checkout (its launch scripts and custom-
    script configs) with the job folders going under it, as HyperPod's scripts expect."""
    launcher_dir = root / "launcher"
    launcher_dir.mkdir(parents=True)
    (launcher_dir / "launcher_scripts").symlink_to(REPO / "launcher_scripts")
    # HyperPod's run_allreduce.sh names its script under `laucher_scripts/` (sic): the user's
    # script must be there for the line to run, on HyperPod as here.
    typo = launcher_dir / "laucher_scripts" / "custom_script" / "custom_allreduce.py"
    typo.parent.mkdir(parents=True)
    typo.write_text(
        (REPO / "launcher_scripts" / "custom_script" / "custom_allreduce.py").read_text()
    )
    return launcher_dir


def run_batch(lines: dict[str, list[str]]) -> dict[str, dict[str, Any]]:
    """Child process: each line through the launcher's own entry, in this process."""
    from hyperpod_launcher.cli import main as cli

    results = {}
    for script, argv in lines.items():
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = cli.main(argv)
            except SystemExit as exit:
                code = exit.code if isinstance(exit.code, int) else 1
        results[script] = {"code": code, "stdout": out.getvalue(), "stderr": err.getvalue()}
    return results


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, dict[str, Any]]]:
    import subprocess

    root = tmp_path_factory.mktemp("hyperpod_lines")
    launcher_dir = launcher_checkout(root)
    runnable = [s for s in sorted(SCRIPTS) if not awaiting_nova(s)]
    results: dict[str, dict[str, Any]] = {}
    env = {
        **os.environ,
        "HYDRA_FULL_ERROR": "1",  # as the scripts run it
        "HPL_STATE_DIR": str(root / "state"),
        "XDG_CACHE_HOME": str(root / "cache"),
        "PYTHONPATH": str(REPO),
    }
    for start in range(0, len(runnable), BATCH):
        batch = {s: command_line(s, launcher_dir) for s in runnable[start : start + BATCH]}
        request = root / f"batch{start}.json"
        request.write_text(json.dumps(batch))
        proc = subprocess.run(
            [sys.executable, __file__, str(request)],
            capture_output=True,
            text=True,
            env=env,
            cwd=root,
            check=False,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        results.update(json.loads(proc.stdout.splitlines()[-1]))
    return launcher_dir, results


def test_the_fixture_holds_every_v1_5_1_launch_script() -> None:
    assert FIXTURE["source"].startswith(
        "aws/sagemaker-hyperpod-recipes@a9ba8bf184ec8b912936bed828ce7ee8554fab3f"
    )
    assert len(SCRIPTS) == 119
    assert sum(map(is_nova, SCRIPTS)) == 30  # Amazon Nova's, run on Kubernetes
    assert all(a.split("=")[0] != "cluster" for args in SCRIPTS.values() for a in args)


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_launch_line_renders(script: str, outcomes: tuple[Path, dict[str, dict[str, Any]]]) -> None:
    if awaiting_nova(script):
        pytest.skip(f"{recipe_of(SCRIPTS[script])}: Amazon Nova recipes are not in the catalog yet")
    launcher_dir, results = outcomes
    result = results[script]
    assert result["code"] == 0, result["stdout"] + result["stderr"]
    first = result["stdout"].splitlines()[0]
    expected = "cluster=k8s: command line" if is_nova(script) else "cluster=slurm: default"
    assert f"({expected}" in first, first
    assert TOKEN not in result["stdout"] + result["stderr"]
    args = command_line(script, launcher_dir)
    name = next((a.split("=", 1)[1] for a in args if a.startswith("recipes.run.name=")), None)
    if name is not None:
        assert (launcher_dir / "results" / name / f"{name}_hydra.yaml").is_file()


def test_no_launch_line_writes_the_token(outcomes: tuple[Path, dict[str, dict[str, Any]]]) -> None:
    launcher_dir, results = outcomes
    written = [p for p in (launcher_dir / "results").rglob("*") if p.is_file()]
    assert len(written) > len(results)  # every launch wrote its job folder
    leaked = [str(p) for p in written if TOKEN in p.read_text(errors="replace")]
    assert leaked == []


if __name__ == "__main__":
    lines = json.loads(Path(sys.argv[1]).read_text())
    print(json.dumps(run_batch(lines)))
