"""A job that fails once after its first checkpoint resumes from it on the real Slurm testbed,
whatever restarts it: the batch script's max_restarts loop (HPL_RESTART_COUNT 1), and HyperPod's
auto-resume, emulated by running the launch's step again in the same allocation without a
requeue (SLURM_RESTART_COUNT unset, so HPL_RESTART_COUNT stays 0). The entry stands in for
the training adapter and writes its sharded checkpoint layout (tests/fixtures/scripts)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import testbed
from testbed import adapter_repo

from tests.conftest import REPO, run_launcher

pytestmark = pytest.mark.slurm

ENTRY = REPO / "tests" / "fixtures" / "scripts" / "adapter_fail_once.py"


def launch(tmp_path: Path, name: str, *overrides: str) -> tuple[subprocess.CompletedProcess, Path]:
    repo, pinned = adapter_repo(tmp_path)
    exp = tmp_path / "exp"
    proc = run_launcher(
        "cluster=slurm",
        f"base_results_dir={tmp_path / 'results'}",
        "cluster.exclusive=false",
        "recipes=training/llama/hf_llama3_8b_seq8k_gpu_p5x16_pretrain",
        "instance_type=none",  # the testbed's nodes are plain CPU nodes
        f"recipes.run.name={name}",
        "recipes.trainer.num_nodes=2",
        "recipes.trainer.devices=2",
        "recipes.model.tensor_model_parallel_degree=1",
        "recipes.model.shard_degree=4",
        "recipes.model.fp8=false",
        "recipes.model.data.use_synthetic_data=true",
        f"recipes.exp_manager.exp_dir={exp}",
        "recipes.trainer.max_steps=4",
        "recipes.exp_manager.checkpoint_callback_params.every_n_train_steps=2",
        "recipes.exp_manager.checkpoint_callback_params.save_top_k=1",
        f"git.repo_url_or_path={repo}",
        f"git.commit={pinned}",
        f"git.entry_script={ENTRY}",
        *overrides,
        env={"HPL_STATE_DIR": str(tmp_path / "state")},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc, exp


def attempts(exp: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (exp / "attempts.jsonl").read_text().splitlines()]


def finished(job_dir: Path, job_id: str) -> tuple[dict[str, str], str]:
    fields = testbed.wait_for_job(job_id, timeout=600)
    (log,) = job_dir.glob(f"log-*_{job_id}.out")
    return fields, log.read_text()


def test_max_restarts_resumes_from_the_first_checkpoint(
    tmp_path: Path, slurm_cluster: None
) -> None:
    proc, exp = launch(tmp_path, "resume-max-restarts", "max_restarts=1")
    job_id = re.search(r"submitted slurm job (\d+)", proc.stdout).group(1)
    fields, log = finished(tmp_path / "results" / "resume-max-restarts", job_id)
    assert fields["JobState"] == "COMPLETED", log[-4000:]
    step_2 = exp / "checkpoints" / "sharded" / "step_2"
    assert attempts(exp) == [
        {"restart": "0", "resume": None, "start": 0},
        {"restart": "1", "resume": str(step_2), "start": 2},
    ]
    assert f"starting fresh: {exp / 'checkpoints' / 'sharded'} does not exist yet" in log
    assert f"attempt 1: resuming from {step_2}" in log
    assert sorted(p.name for p in (exp / "checkpoints" / "sharded").iterdir()) == [
        "step_2",
        "step_4",
    ]


def test_a_step_run_again_in_the_same_job_resumes(tmp_path: Path, slurm_cluster: None) -> None:
    # HyperPod's auto-resume replaces the node and runs the step again inside the same job, so
    # SLURM_RESTART_COUNT stays unset: the resume must not depend on a restart count.
    launch(tmp_path, "resume-rerun", "cluster.slurm_create_submission_file_only=true")
    job_dir = tmp_path / "results" / "resume-rerun"
    (batch,) = job_dir.glob("*_submission.sh")
    flags = [line for line in batch.read_text().splitlines() if line.startswith("#SBATCH")]
    rerun = job_dir / "rerun_step.sh"
    rerun.write_text(
        "\n".join(
            [
                "#!/bin/bash",
                *flags,
                f"bash {batch} && exit 0",
                'echo "the step failed; running it again in this job"',
                f"exec bash {batch}",
                "",
            ]
        )
    )
    submitted = subprocess.run(
        ["sbatch", "--parsable", str(rerun)], capture_output=True, text=True, check=True
    )
    job_id = submitted.stdout.strip().split(";")[0]
    fields, log = finished(job_dir, job_id)
    assert fields["JobState"] == "COMPLETED", log[-4000:]
    exp = tmp_path / "exp"
    step_2 = exp / "checkpoints" / "sharded" / "step_2"
    assert attempts(exp) == [
        {"restart": "0", "resume": None, "start": 0},
        {"restart": "0", "resume": str(step_2), "start": 2},
    ]
    assert f"attempt 0: resuming from {step_2}" in log
