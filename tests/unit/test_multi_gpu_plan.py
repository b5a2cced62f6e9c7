"""`bench/multi_gpu.py --plan` dry-runs every launch of the multi-GPU benchmark through
`python main.py`; each rendered job starts the planned process count, and its recipe and
DeepSpeed config give the entry the planned strategy (read with the entry's own functions)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from hyperpod_launcher.examples import open_ft
from tests.conftest import REPO

BENCH = REPO / "bench" / "multi_gpu.py"
MICRO = 8  # bench/open_sft_mfu.py's micro batch per GPU


def bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(BENCH), *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), "CUDA_VISIBLE_DEVICES": ""},
        check=False,
    )


def entry_arguments(job: Path, world: int, monkeypatch: pytest.MonkeyPatch) -> dict:
    """The Trainer arguments the entry builds from the rendered recipe on `world` processes."""
    recipe = yaml.safe_load(next(job.glob("*_hydra.yaml")).read_text())
    monkeypatch.setenv("WORLD_SIZE", str(world))
    monkeypatch.setattr(open_ft, "_cuda", lambda: True)  # the GPU host it plans for
    ds = open_ft.deepspeed_config(recipe, str(job))
    return open_ft.trainer_arguments(recipe, "sft", str(job / "out"), ds)


@pytest.mark.parametrize("gpus", [2, 8])
def test_plan_renders_every_case_with_its_processes_and_strategy(
    gpus: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    done = bench("--plan", "--gpus", str(gpus), "--plan-dir", str(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"plan for {gpus} GPUs: all launches ok" in done.stdout
    jobs = tmp_path / "jobs"
    planned = {
        "mgpu-ddp-x1": ("ddp", 1),
        "mgpu-fsdp-x1": ("fsdp", 1),
        f"mgpu-ddp-x{gpus}": ("ddp", gpus),
        f"mgpu-fsdp-x{gpus}": ("fsdp", gpus),
        f"mgpu-zero2-x{gpus}": (2, gpus),
        f"mgpu-zero3-x{gpus}": (3, gpus),
        f"mgpu-hang-x{gpus}": ("hang", gpus),
    }
    assert {p.name for p in jobs.iterdir()} == set(planned)
    for name, (strategy, procs) in planned.items():
        job = jobs / name
        assert json.loads((job / "job.json").read_text())["procs_per_node"] == procs
        script = (job / "train_script.sh").read_text()
        assert f"--nproc-per-node={procs}\n" in script, name
        if strategy == "hang":
            assert "stall_one_rank.py" in script.rsplit("torchrun", 1)[1]
            continue
        args = entry_arguments(job, procs, monkeypatch)
        if strategy == "ddp":
            assert "fsdp" not in args and "deepspeed" not in args, name
        elif strategy == "fsdp":
            assert args["fsdp"] == "full_shard auto_wrap" and "deepspeed" not in args
        else:
            ds = args["deepspeed"]
            assert ds["zero_optimization"]["stage"] == strategy and "fsdp" not in args
            assert ds["train_batch_size"] == MICRO * procs
            assert args["per_device_train_batch_size"] == MICRO and args["bf16"] is True
    # The catalog's 8-GPU H100 type gives `status` its MFU peak; no catalog type has 2.
    job_json = json.loads((jobs / f"mgpu-ddp-x{gpus}" / "job.json").read_text())
    assert job_json["instance_type"] == ("p5.48xlarge" if gpus == 8 else None)


def test_refuses_without_two_gpus_unless_planning() -> None:
    done = bench("--steps", "2")
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "error: bench/multi_gpu.py needs 2 or more GPUs on this host (found 0); "
        "`--plan --gpus N` dry-runs its launches without them"
    )
