"""Rendering: whole-file golden comparisons, determinism, and shellcheck on every script.

Regenerate the golden files with `UPDATE_GOLDEN=1 pytest tests/unit/test_render_golden.py`
and review the diff like code.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import pytest

from hyperpod_launcher.launch.compose import plan
from tests.conftest import REPO, shellcheck

GOLDEN = REPO / "tests" / "golden"
LLAMA = "recipes=training/llama/hf_llama3_8b_seq8k_gpu_p5x16_pretrain"

CASES: dict[str, tuple[str, ...]] = {
    "slurm_llama8b_pyxis": (
        LLAMA,
        "recipes.run.name=llama-8b",
        "cluster=slurm",
        "instance_type=ml.p5.48xlarge",
        "base_results_dir=/fsx/results",
        "container='nvcr.io#nvidia/pytorch:24.01-py3'",
        "git.commit=0123abc",
        "cluster.partition=gpu",
        "cluster.account=ml-team",
        "cluster.qos=high",
        "cluster.dependency=afterok:1234",
        "cluster.comment='llama 8b # first run'",
        "recipes.exp_manager.exp_dir=/fsx/exp/llama-8b",
        "container_mounts=[/fsx/data:/data:ro]",
        "max_restarts=2",
        "cluster.auto_resume=true",
    ),
    "slurm_trainium_custom_docker": (
        "cluster=slurm",
        "instance_type=trn1.32xlarge",
        "base_results_dir=/shared/results",
        "git.repo_url_or_path=git@github.com:example/train.git",
        "git.branch=main",
        "training_cfg.entry_script=scripts/train.py",
        "training_cfg.run.name=trn-custom",
        "training_cfg.run.nodes=4",
        "training_cfg.run.ntasks_per_node=null",
        "training_cfg.run.time_limit=02:00:00",
        "container=public.ecr.aws/neuron/pytorch-training-neuronx:2.1.2",
        "cluster.stderr_to_stdout=false",
        "cluster.exclusive=false",
        "cluster.mem=64G",
        "cluster.cpus_per_task=8",
        "cluster.constraint=trn1",
        "cluster.exclude=node7",
        "cluster.srun_args=['--mpi=pmi2']",
        "cluster.slurm_docker_cfg.docker_args=['--ulimit=memlock=-1']",
        "cluster.slurm_docker_cfg.post_launch_commands=['pip install -e .']",
        "+cluster.additional_parameters.reservation=trn-res",
        "+env_vars.WANDB_API_KEY=wandb-not-a-real-key",
        "+env_vars.NEURON_CC_FLAGS='--model-type transformer'",
    ),
    "local_smoke": ("base_results_dir=/results",),
}


def rendered_files(case: str) -> dict[str, str]:
    files = plan(CASES[case], launch_id="golden").files
    return {name: text.replace(str(REPO), "<repo>") for name, (text, _) in files.items()}


@pytest.mark.parametrize("case", CASES)
def test_render_matches_golden(case: str) -> None:
    files = rendered_files(case)
    folder = GOLDEN / case
    if os.environ.get("UPDATE_GOLDEN"):
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.iterdir():
            old.unlink()
        for name, text in files.items():
            (folder / name).write_text(text)
    assert sorted(files) == sorted(p.name for p in folder.iterdir())
    for name, text in files.items():
        expected = (folder / name).read_text()
        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(True), text.splitlines(True), f"golden/{name}", "rendered"
            )
        )
        assert text == expected, diff


@pytest.mark.parametrize("case", CASES)
def test_render_is_deterministic_and_pure(case: str, tmp_path: Path) -> None:
    assert rendered_files(case) == rendered_files(case)
    assert not Path("/fsx").exists() and not Path("/shared/results").exists()


def test_generated_scripts_pass_shellcheck() -> None:
    scripts = sorted(GOLDEN.glob("*/*.sh"))
    assert len(scripts) >= 5
    shellcheck(*scripts)


def test_secrets_never_rendered() -> None:
    text = "".join(rendered_files("slurm_trainium_custom_docker").values())
    assert "wandb-not-a-real-key" not in text
    assert "--env=WANDB_API_KEY" in text  # the name reaches docker; the value stays in the env


def test_custom_script_on_trainium_uses_every_neuron_core() -> None:
    train = rendered_files("slurm_trainium_custom_docker")["train_script.sh"]
    assert "--nproc-per-node=32" in train
    assert "export FI_PROVIDER=efa" in train
