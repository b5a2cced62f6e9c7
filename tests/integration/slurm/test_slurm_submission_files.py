"""Write-only launches on the real Slurm testbed: the printed sbatch command is run as is.

`cluster.slurm_create_submission_file_only=true` checks the code out, so its command works;
`dry_run=true` fetches nothing, says so, and its batch script stops with that message.
"""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path

import pytest
import testbed
from testbed import adapter_repo

from tests.conftest import run_launcher

pytestmark = pytest.mark.slurm

RECIPE = (
    "recipes=training/llama/hf_llama3_8b_seq8k_gpu_p5x16_pretrain",
    "instance_type=none",  # the testbed's nodes are plain CPU nodes
    "recipes.trainer.num_nodes=2",
    "recipes.trainer.devices=1",
    "recipes.model.tensor_model_parallel_degree=1",
    "recipes.model.shard_degree=2",
    "recipes.model.fp8=false",
    "recipes.model.data.use_synthetic_data=true",  # the stand-in adapter reads no data
)


def write_only(root: Path, name: str, *overrides: str) -> tuple[Path, str, str]:
    """Launch without submitting; return (job folder, printed submit command, stdout)."""
    repo, pinned = adapter_repo(root / name)
    proc = run_launcher(
        "cluster=slurm",
        f"base_results_dir={root / 'results'}",
        "cluster.exclusive=false",
        *RECIPE,
        f"recipes.run.name={name}",
        f"recipes.exp_manager.exp_dir={root / name / 'exp'}",
        f"git.repo_url_or_path={repo}",
        f"git.commit={pinned}",
        *overrides,
        env={"HPL_STATE_DIR": str(root / "state"), "XDG_CACHE_HOME": str(root / "cache")},
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout
    (command,) = [
        line.removeprefix("submit with: ")
        for line in proc.stdout.splitlines()
        if line.startswith("submit with: ")
    ]
    return root / "results" / name, command, proc.stdout


def sbatch(command: str) -> str:
    proc = subprocess.run(shlex.split(command), capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip().split(";")[0]


def test_submission_file_only_checks_out_so_the_printed_sbatch_works(
    tmp_path: Path, slurm_cluster: None
) -> None:
    job_dir, command, _ = write_only(
        tmp_path, "written", "cluster.slurm_create_submission_file_only=true"
    )
    record = json.loads((job_dir / "job.json").read_text())
    assert record["submit"]["status"] == "dry_run"
    checkout = Path(record["code"]["checkout_dir"])
    assert record["resolved_commit"] == record["code"]["commit"]
    assert (checkout / "examples" / "llama" / "llama_pretrain.py").is_file()

    job_id = sbatch(command)
    fields = testbed.wait_for_job(job_id, timeout=240)
    (log,) = job_dir.glob(f"log-*_{job_id}.out")
    assert fields["JobState"] == "COMPLETED", log.read_text()
    result = json.loads((tmp_path / "written" / "exp" / "result.json").read_text())
    assert result["world_size"] == 2
    assert result["cwd"] == str(checkout)


def test_dry_run_says_its_scripts_need_the_checkout_and_the_job_stops_with_that(
    tmp_path: Path, slurm_cluster: None
) -> None:
    job_dir, command, stdout = write_only(tmp_path, "review", "dry_run=true")
    record = json.loads((job_dir / "job.json").read_text())
    checkout = record["code"]["checkout_dir"]
    assert not Path(checkout).exists()
    assert (
        f"dry run: these scripts are for review; the code is not checked out into {checkout}, "
        "so submitting them needs that checkout (cluster.slurm_create_submission_file_only=true "
        "writes them and checks it out)"
    ) in stdout

    job_id = sbatch(command)
    fields = testbed.wait_for_job(job_id, timeout=240)
    assert fields["JobState"] == "FAILED"
    (log,) = job_dir.glob(f"log-*_{job_id}.out")
    assert log.read_text().strip() == (
        f"error: the code checkout {checkout} is missing; launch without dry_run=true, or with "
        "cluster.slurm_create_submission_file_only=true, to check it out"
    )
