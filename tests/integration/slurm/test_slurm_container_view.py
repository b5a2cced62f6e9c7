"""Container mounts on the real Slurm testbed with the pyxis stand-in.

The stand-in runs tasks on the host, so each task first enters a stand-in of the container's
filesystem view (tests/fixtures/container_view): the test's folder and the launcher's example
scripts are covered by empty tmpfs and only the job's --container-mounts are bound back. A job
that reads a path nobody mounted fails there as it would in the container.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import pytest
import testbed

from tests.conftest import REPO, require, run_launcher

pytestmark = pytest.mark.slurm

VIEW = REPO / "tests" / "fixtures" / "container_view"
IMAGE = "nvcr.io#nvidia/pytorch:24.01-py3"
EXAMPLES = REPO / "hyperpod_launcher" / "examples"


def launch(root: Path, *overrides: str) -> str:
    env = {
        "BASH_ENV": str(VIEW / "bash_env.sh"),
        "HPL_TEST_VIEW": str(VIEW / "enter_view.py"),
        "HPL_TEST_PYTHON": sys.executable,
        "HPL_TEST_HIDDEN": f"{root}:{EXAMPLES}",
        "HPL_TEST_ROOT": str(root),
        "HPL_STATE_DIR": str(root / "state"),
        "XDG_CACHE_HOME": str(root / "cache"),
    }
    proc = run_launcher(
        "cluster=slurm",
        f"base_results_dir={root / 'results'}",
        "cluster.exclusive=false",
        f"container='{IMAGE}'",
        *overrides,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout
    match = re.search(r"submitted slurm job (\d+)", proc.stdout)
    assert match, proc.stdout
    return match.group(1)


@pytest.fixture(scope="module")
def jobs(tmp_path_factory: pytest.TempPathFactory, slurm_cluster: None) -> dict[str, object]:
    require(os.geteuid() == 0, "root (the container-view stand-in mounts tmpfs)")
    root = tmp_path_factory.mktemp("view")
    (root / "data").mkdir()
    (root / "data" / "train.jsonl").write_text('{"text": "hello"}\n')
    (root / "model").mkdir()
    (root / "model" / "config.json").write_text('{"model_type": "llama"}')
    (root / "not-named").mkdir()  # in the test's folder, named by nothing: not in the view
    (root / "entry").mkdir()
    (root / "entry" / "read_view.py").write_text((VIEW / "read_view.py").read_text())
    recipe = launch(
        root,
        "recipes=training/llama/hf_llama3_8b_seq8k_gpu_p5x16_pretrain",
        "instance_type=none",  # the testbed's nodes are plain CPU nodes
        "recipes.run.name=view-recipe",
        "recipes.trainer.num_nodes=2",
        "recipes.trainer.devices=1",
        "recipes.model.tensor_model_parallel_degree=1",
        "recipes.model.shard_degree=2",
        "recipes.model.fp8=false",
        f"recipes.model.data.train_dir={root / 'data'}",
        f"recipes.model.hf_model_name_or_path={root / 'model'}",
        f"recipes.exp_manager.exp_dir={root / 'exp'}",
        "git.repo_url_or_path=null",
        f"git.entry_script={root / 'entry' / 'read_view.py'}",
    )
    shipped = launch(
        root,
        "recipes=custom_script/allreduce_smoke",
        "training_cfg.run.name=view-shipped",
        "training_cfg.run.nodes=2",
    )
    return {"root": root, "recipe": recipe, "shipped": shipped}


def finished(job_id: str, job_dir: Path) -> tuple[str, str]:
    fields = testbed.wait_for_job(job_id, timeout=240)
    (log,) = job_dir.glob(f"log-*_{job_id}.out")
    return fields["JobState"], log.read_text()


def test_the_job_reads_its_data_model_and_entry_from_the_container_view(
    jobs: dict[str, object],
) -> None:
    root = jobs["root"]
    assert isinstance(root, Path)
    state, log = finished(str(jobs["recipe"]), root / "results" / "view-recipe")
    assert state == "COMPLETED", log
    view = json.loads((root / "exp" / "view.json").read_text())
    assert view["data"] == '{"text": "hello"}\n'
    assert view["model"] == '{"model_type": "llama"}'
    assert view["entry"].startswith('"""Entry for the container-view test')
    assert view["data_writable"] is False  # data is mounted read-only
    # Only what the recipe names is in the view: not the sibling folder nobody named.
    assert view["root"] == ["data", "entry", "exp", "model", "results"]


def test_the_launchers_entry_script_runs_from_the_job_folder(jobs: dict[str, object]) -> None:
    root = jobs["root"]
    assert isinstance(root, Path)
    job_dir = root / "results" / "view-shipped"
    state, log = finished(str(jobs["shipped"]), job_dir)
    assert state == "COMPLETED", log
    assert "all_reduce OK: world size 4, sum 6" in log
    assert (job_dir / "scripts" / "allreduce_smoke.py").is_file()
