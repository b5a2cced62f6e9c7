"""HyperPod's defaults through the CLI: the cluster a launch picks, advice for another cluster's
key, and recipe names written with `.yaml`."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import run_launcher

L8B = "training/llama/hf_llama3_8b_seq8k_gpu_p5x16_pretrain"


def launch(tmp_path: Path, *overrides: str):
    return run_launcher(
        *overrides,
        f"base_results_dir={tmp_path / 'results'}",
        env={"HPL_STATE_DIR": str(tmp_path / "state"), "XDG_CACHE_HOME": str(tmp_path / "cache")},
    )


def local_adapter(path: Path) -> Path:
    """A git repository standing in for the training adapter (launches check code out)."""
    (path / "examples" / "llama").mkdir(parents=True)
    (path / "examples" / "llama" / "llama_pretrain.py").write_text("print('hi')\n")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-C", str(path)]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "adapter"], check=True)
    return path


def summary(proc) -> str:
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()[0]


def test_a_recipe_without_cluster_renders_on_slurm(tmp_path: Path) -> None:
    line = summary(launch(tmp_path, f"recipes={L8B}", "dry_run=true"))
    assert line.startswith("slurm job sagemaker-llama3-8b-seq8k-p5x16-pretrain: 16 node(s)")
    assert "(cluster=slurm: default" in line
    job_dir = tmp_path / "results" / "llama3-8b-seq8k-p5x16-pretrain"
    assert (job_dir / "sagemaker-llama3-8b-seq8k-p5x16-pretrain_submission.sh").is_file()
    assert json.loads((job_dir / "job.json").read_text())["backend"] == "slurm"


def test_hyperpods_submission_file_only_line_works_without_cluster(tmp_path: Path) -> None:
    proc = launch(
        tmp_path,
        f"recipes={L8B}",
        "cluster.slurm_create_submission_file_only=True",
        f"git.repo_url_or_path={local_adapter(tmp_path / 'adapter')}",
        "recipes.model.data.train_dir=/fsx/data/train",  # a job to submit needs its data
    )
    assert "submit with: sbatch --parsable" in proc.stdout, proc.stderr


def test_no_recipe_is_the_local_smoke_test(tmp_path: Path) -> None:
    line = summary(launch(tmp_path, "dry_run=true"))
    assert line.startswith("local job allreduce-smoke:")
    assert "(cluster=local: default of recipes=custom_script/allreduce_smoke" in line


@pytest.mark.parametrize(
    ("overrides", "backend"),
    [
        (("cluster=slurm",), "slurm"),  # the smoke test's own default loses to the command line
        ((f"recipes={L8B}", "cluster=k8s", "container=img:1"), "k8s"),
    ],
)
def test_cluster_on_the_command_line_wins(
    tmp_path: Path, overrides: tuple[str, ...], backend: str
) -> None:
    line = summary(launch(tmp_path, *overrides, "dry_run=true"))
    assert line.split()[0] == backend
    assert f"(cluster={backend}: command line" in line


def test_cfg_job_shows_the_cluster_file_the_launch_would_use() -> None:
    with_recipe = run_launcher(f"recipes={L8B}", "--cfg", "job")
    smoke = run_launcher("--cfg", "job")
    assert with_recipe.returncode == smoke.returncode == 0, with_recipe.stderr + smoke.stderr
    assert "  partition: null" in with_recipe.stdout and "detach" not in with_recipe.stdout
    assert "  detach: false" in smoke.stdout and "partition" not in smoke.stdout


def test_a_sweep_without_cluster_renders_every_point_on_slurm(tmp_path: Path) -> None:
    proc = launch(
        tmp_path, "-m", f"recipes={L8B}", "recipes.model.train_batch_size=1,2", "dry_run=true"
    )
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stdout.splitlines() if " job " in line]
    assert len(lines) == 2 and all(line.startswith("slurm job ") for line in lines), lines


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ("cluster.slurm_create_submission_file_only=True",),
            "error: 'cluster.slurm_create_submission_file_only' is a key of cluster=slurm; "
            "this launch uses cluster=local (add cluster=slurm)",
        ),
        (  # `+` reaches the launcher's own validation instead of Hydra's
            (f"recipes={L8B}", "cluster=local", "+cluster.slurm_create_submission_file_only=True"),
            "error: 'cluster.slurm_create_submission_file_only' is a key of cluster=slurm; "
            "this launch uses cluster=local (add cluster=slurm)",
        ),
        (
            (f"recipes={L8B}", "cluster.sm_jobs_config.output_path=s3://b/o"),
            "error: 'cluster.sm_jobs_config.output_path' is a key of cluster=sm_jobs; "
            "this launch uses cluster=slurm (add cluster=sm_jobs)",
        ),
        (  # a typo of this cluster's key keeps its did-you-mean
            (f"recipes={L8B}", "cluster.partiton=gpu"),
            "error: unknown key 'cluster.partiton' (did you mean 'cluster.partition'?); "
            "to add a new key use +cluster.partiton=...",
        ),
    ],
)
def test_a_key_of_another_cluster_names_that_cluster(
    tmp_path: Path, overrides: tuple[str, ...], message: str
) -> None:
    proc = launch(tmp_path, *overrides)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [message]
    assert not (tmp_path / "results").exists()


def test_a_recipe_name_with_yaml_resolves_as_without(tmp_path: Path) -> None:
    job_dir = tmp_path / "results" / "llama3-8b-seq8k-p5x16-pretrain"
    seen = []
    for suffix in ("", ".yaml"):  # the second launch archives the first one's files
        proc = launch(tmp_path, f"recipes={L8B}{suffix}", "dry_run=true")
        assert proc.returncode == 0, proc.stderr
        record = json.loads((job_dir / "job.json").read_text())
        recipe = (job_dir / "llama3-8b-seq8k-p5x16-pretrain_hydra.yaml").read_text()
        seen.append((record["recipe"], record["recipe_sha256"], record["overrides"][0], recipe))
    assert seen[0] == seen[1]
    assert seen[0][0] == L8B


@pytest.mark.parametrize("suffix", [".yml", ".json"])
def test_other_suffixes_are_one_line_errors(tmp_path: Path, suffix: str) -> None:
    proc = launch(tmp_path, f"recipes={L8B}{suffix}", "dry_run=true")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"error: recipes={L8B}{suffix}: unknown recipe; a name ends in .yaml or nothing: "
        f"recipes={L8B}"
    ]
    assert not (tmp_path / "results").exists()
