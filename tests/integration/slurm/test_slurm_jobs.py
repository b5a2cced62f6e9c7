"""Request jobs on a real 2-node Slurm cluster (scripts/slurm_testbed), end to end.

All jobs are submitted up front by one fixture so they run side by side; each test then
waits for its own job and checks what the job itself wrote.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import testbed
from testbed import adapter_repo

from tests.conftest import REPO, run_launcher

pytestmark = pytest.mark.slurm

FIXTURES = REPO / "tests" / "fixtures"
HF_SECRET = "hf_s3cr3t_for_tests_only"
IMAGE = "nvcr.io#nvidia/pytorch:24.01-py3"


def submit(results: Path, *overrides: str) -> str:
    proc = run_launcher(
        "cluster=slurm", f"base_results_dir={results}", "cluster.exclusive=false", *overrides
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout
    match = re.search(r"submitted slurm job (\d+)", proc.stdout)
    assert match, proc.stdout
    return match.group(1)


@pytest.fixture(scope="module")
def jobs(
    tmp_path_factory: pytest.TempPathFactory, slurm_cluster: None
) -> dict[str, tuple[str, Path]]:
    root = tmp_path_factory.mktemp("slurm")
    repo, pinned = adapter_repo(root)
    results = root / "results"
    custom = ("recipes=custom_script/allreduce_smoke", "training_cfg.run.nodes=2")
    return {
        "allreduce": (
            submit(
                results,
                *custom,
                "training_cfg.run.ntasks_per_node=2",
                "training_cfg.run.name=allreduce",
            ),
            results / "allreduce",
        ),
        "recipe": (
            submit(
                results,
                "recipes=training/llama/hf_llama3_8b_seq8k_gpu_p5x16_pretrain",
                "instance_type=none",  # the testbed's nodes are plain CPU nodes
                "recipes.run.name=llama-recipe",
                "recipes.trainer.num_nodes=2",
                "recipes.trainer.devices=2",
                "recipes.model.tensor_model_parallel_degree=1",
                "recipes.model.shard_degree=4",
                "recipes.model.fp8=false",
                "recipes.model.train_batch_size=3",
                f"recipes.model.hf_access_token={HF_SECRET}",
                f"recipes.exp_manager.exp_dir={root / 'exp'}",
                "recipes.model.data.use_synthetic_data=true",
                f"git.repo_url_or_path={repo}",
                f"git.commit={pinned}",
            ),
            results / "llama-recipe",
        ),
        "container": (
            submit(
                results,
                *custom,
                "training_cfg.run.name=container",
                f"training_cfg.entry_script={FIXTURES / 'scripts' / 'show_container_env.py'}",
                "training_cfg.script_args=[]",
                f"container='{IMAGE}'",
                f"container_mounts=[{root}:/data:ro]",
            ),
            results / "container",
        ),
        "failing": (
            submit(
                results,
                "recipes=custom_script/allreduce_smoke",
                "training_cfg.run.name=failing",
                f"training_cfg.entry_script={FIXTURES / 'scripts' / 'fail.py'}",
                "training_cfg.script_args=[]",
            ),
            results / "failing",
        ),
    }


def log_of(job_dir: Path, job_id: str) -> str:
    (log,) = job_dir.glob(f"log-*_{job_id}.out")
    return log.read_text()


def finished(jobs: dict[str, tuple[str, Path]], name: str) -> tuple[dict[str, str], str]:
    job_id, job_dir = jobs[name]
    fields = testbed.wait_for_job(job_id, timeout=240)
    return fields, log_of(job_dir, job_id)


def test_two_nodes_two_processes_allreduce(jobs: dict[str, tuple[str, Path]]) -> None:
    fields, log = finished(jobs, "allreduce")
    assert fields["JobState"] == "COMPLETED", log
    assert "all_reduce OK: world size 4, sum 6" in log
    hosts = set(re.findall(r"rank \d/4 on (node\d)", log))
    assert hosts == {"node1", "node2"}, log


def test_recipe_mode_runs_pinned_adapter_and_keeps_token_out_of_files(
    jobs: dict[str, tuple[str, Path]],
) -> None:
    fields, log = finished(jobs, "recipe")
    assert fields["JobState"] == "COMPLETED", log
    job_dir = jobs["recipe"][1]
    result = json.loads((job_dir.parent.parent / "exp" / "result.json").read_text())
    assert result["world_size"] == 4
    assert result["train_batch_size"] == 3
    assert result["hf_access_token_in_recipe"] == "${oc.env:HF_TOKEN,null}"
    assert result["hf_token_env_present"] is True
    record = json.loads((job_dir / "job.json").read_text())
    assert record["submit"]["status"] == "submitted"
    assert record["job_id"] == jobs["recipe"][0]
    assert record["resolved_commit"] == record["code"]["commit"]
    assert result["cwd"] == record["code"]["checkout_dir"]
    for path in job_dir.rglob("*"):
        if path.is_file() and ".git" not in path.parts:
            assert HF_SECRET not in path.read_text(errors="replace"), path


def test_pyxis_flags_reach_slurm_intact(jobs: dict[str, tuple[str, Path]]) -> None:
    fields, log = finished(jobs, "container")
    assert fields["JobState"] == "COMPLETED", log
    job_dir = jobs["container"][1]
    lines = re.findall(r"host=(node\d) image=(\S+) mounts=(\S+)", log)
    assert {host for host, _, _ in lines} == {"node1", "node2"}, log
    for _, image, mounts in lines:
        assert image == IMAGE
        assert f"{job_dir}:{job_dir}" in mounts.split(",")
        assert mounts.split(",")[0].endswith(":/data:ro")  # parents first


def test_failing_job_is_reported_failed(jobs: dict[str, tuple[str, Path]]) -> None:
    fields, _ = finished(jobs, "failing")
    assert fields["JobState"] == "FAILED"
    assert fields["ExitCode"].split(":")[0] != "0"


def test_sbatch_rejection_exits_nonzero_with_slurms_message(tmp_path: Path, jobs: object) -> None:
    proc = run_launcher(
        "cluster=slurm", f"base_results_dir={tmp_path}", "cluster.partition=no-such-partition"
    )
    assert proc.returncode == 1
    assert "invalid partition" in proc.stderr.lower(), proc.stderr
    job_dir = tmp_path / "allreduce-smoke"
    assert (job_dir / "sagemaker-allreduce-smoke_submission.sh").is_file()
    record = json.loads((job_dir / "job.json").read_text())
    assert record["submit"]["status"] == "failed"
