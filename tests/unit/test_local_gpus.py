"""cluster=local counts this machine's GPUs: one smoke-test process per GPU, 2 CPU (gloo)
processes without one, and a recipe asking for more GPU processes than there are is refused.

The CPU case is this machine as it is. The 1- and N-GPU cases run the launcher with torch made
unimportable (tests/fixtures/no_torch) and a stand-in `nvidia-smi` on PATH that lists that many
GPUs, the way the launcher counts them where its environment has no torch.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import REPO, run_launcher

NO_TORCH = str(REPO / "tests" / "fixtures" / "no_torch")
DEEPSPEED = "recipes=fine-tuning/deepspeed/hf_llama3_8b_seq8k_gpu_zero2"


def fake_gpus(tmp_path: Path, count: int) -> dict[str, str]:
    """Environment in which this machine appears to have `count` GPUs (nvidia-smi -L)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    lines = "".join(
        f"GPU {i}: NVIDIA H100 80GB HBM3 (UUID: GPU-{i:08d}-0000-0000-0000-000000000000)\\n"
        for i in range(count)
    )
    tool = bin_dir / "nvidia-smi"
    tool.write_text(f"#!/bin/sh\nprintf '{lines}'\n")
    tool.chmod(0o755)
    return {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "PYTHONPATH": os.pathsep.join([NO_TORCH, str(REPO)]),
    }


def launch(tmp_path: Path, *overrides: str, env: dict[str, str] | None = None):
    return run_launcher(
        *overrides,
        f"base_results_dir={tmp_path / 'results'}",
        "dry_run=true",
        env={
            "HPL_STATE_DIR": str(tmp_path / "state"),
            "XDG_CACHE_HOME": str(tmp_path / "cache"),
            **(env or {}),
        },
    )


def smoke_processes(tmp_path: Path, proc) -> str:
    assert proc.returncode == 0, proc.stderr
    script = (tmp_path / "results" / "allreduce-smoke" / "train_script.sh").read_text()
    (flag,) = [w for w in script.split() if w.startswith("--nproc-per-node=")]
    return proc.stdout.splitlines()[0] + " " + flag


def test_no_gpu_runs_two_cpu_processes(tmp_path: Path) -> None:
    no_gpu = {"CUDA_VISIBLE_DEVICES": ""}  # this machine as it is, or one with GPUs hidden
    line = smoke_processes(tmp_path, launch(tmp_path, env=no_gpu))
    assert "local job allreduce-smoke: 2 process(es) on this machine" in line
    assert "this machine: no GPU (gloo)" in line and line.endswith("--nproc-per-node=2")


@pytest.mark.parametrize("gpus", [1, 4])
def test_one_process_per_gpu(tmp_path: Path, gpus: int) -> None:
    line = smoke_processes(tmp_path, launch(tmp_path, env=fake_gpus(tmp_path, gpus)))
    assert f"local job allreduce-smoke: {gpus} process(es) on this machine" in line
    assert f"this machine: {gpus} GPU(s)" in line and line.endswith(f"--nproc-per-node={gpus}")


def test_cuda_visible_devices_narrows_the_count(tmp_path: Path) -> None:
    env = {**fake_gpus(tmp_path, 4), "CUDA_VISIBLE_DEVICES": "2,3"}
    assert smoke_processes(tmp_path, launch(tmp_path, env=env)).endswith("--nproc-per-node=2")


def test_a_recipe_asking_for_more_gpu_processes_than_gpus_is_refused(tmp_path: Path) -> None:
    proc = launch(tmp_path, DEEPSPEED, "cluster=local", env=fake_gpus(tmp_path, 1))
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: recipes.trainer.devices=8: cluster=local has 1 GPU(s) on this machine; "
        "set recipes.trainer.devices=1 or fewer"
    ]
    assert not (tmp_path / "results").exists()


def test_an_explicit_process_count_within_the_gpus_is_kept(tmp_path: Path) -> None:
    env = fake_gpus(tmp_path, 4)
    line = smoke_processes(
        tmp_path, launch(tmp_path, "training_cfg.run.ntasks_per_node=3", env=env)
    )
    assert line.endswith("--nproc-per-node=3")
