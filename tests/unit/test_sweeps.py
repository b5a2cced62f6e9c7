"""Sweeps: `python main.py -m key=a,b,c ...` makes one job per point, each with its own job
folder, run name and experiment folder, so no point clobbers or resumes another."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from tests.conftest import run_launcher

L8B = "recipes=training/llama/hf_llama3_8b_seq8k_gpu_p5x16_pretrain"
NAME = "llama3-8b-seq8k-p5x16-pretrain"


def test_a_sweep_is_one_dry_run_job_per_point(tmp_path: Path) -> None:
    results = tmp_path / "results"
    proc = run_launcher(
        "-m",
        L8B,
        "recipes.model.train_batch_size=1,2,4",
        "cluster=slurm",
        "dry_run=true",
        f"base_results_dir={results}",
        "recipes.exp_manager.exp_dir=/fsx/exp",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    folders = sorted(p.name for p in results.iterdir() if p.name != ".sweeps")
    assert folders == [f"{NAME}-0", f"{NAME}-1", f"{NAME}-2"]
    assert len(list(results.glob(".sweeps/*/multirun.yaml"))) == 1  # kept out of the cwd
    assert not (tmp_path / "multirun.yaml").exists()
    seen = {}
    for num, folder in enumerate(folders):
        job_dir = results / folder
        recipe = yaml.safe_load((job_dir / f"{folder}_hydra.yaml").read_text())
        record = json.loads((job_dir / "job.json").read_text())
        assert record["name"] == folder and record["submit"]["status"] == "dry_run"
        assert recipe["run"]["name"] == folder
        assert recipe["run"]["results_dir"] == str(job_dir)
        assert recipe["exp_manager"]["exp_dir"] == f"/fsx/exp/{folder}"
        assert recipe["exp_manager"]["checkpoint_dir"] == f"/fsx/exp/{folder}/checkpoints/"
        assert f"sagemaker-{folder}_submission.sh" in record["artifacts"]
        seen[recipe["model"]["train_batch_size"]] = num
    assert sorted(seen) == [1, 2, 4]
    assert proc.stdout.count("dry run: wrote") == 3


def test_a_sweep_point_that_fails_a_check_stops_with_one_line(tmp_path: Path) -> None:
    results = tmp_path / "results"
    proc = run_launcher(
        "-m",
        L8B,
        "recipes.model.shard_degree=64,48",
        "cluster=slurm",
        "dry_run=true",
        f"base_results_dir={results}",
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: recipes.model.shard_degree=48: tensor_model_parallel_degree 2 x "
        "expert_model_parallel_degree 1 x shard_degree 48 = 96 must divide the world size 128 "
        "(16 nodes x 8 devices)"
    ]
    jobs = sorted(p.name for p in results.iterdir() if p.name != ".sweeps")
    assert jobs == [f"{NAME}-0"]  # the valid point only


def test_hydra_mode_multirun_as_an_override_sweeps_like_dash_m(tmp_path: Path) -> None:
    results = tmp_path / "results"
    proc = run_launcher(
        "hydra.mode=MULTIRUN",
        L8B,
        "recipes.model.train_batch_size=1,2",
        "cluster=slurm",
        "dry_run=true",
        f"base_results_dir={results}",
        "recipes.exp_manager.exp_dir=/fsx/exp",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in results.iterdir() if p.name != ".sweeps") == [
        f"{NAME}-0",
        f"{NAME}-1",
    ]
