"""What users type most, checked at launch: instance types, images, flag conflicts, files,
early paths and commits. Each bad input is one line, exit 2, nothing written or queued; the
defaults of custom scripts follow the instance and the entry script."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import run_launcher

OPEN_SFT = "recipes=fine-tuning/hf/open_causal_lm_gpu_sft_lora"
TRN1 = "recipes=training/llama/hf_llama3_8b_seq8k_trn1x4_pretrain"
NO_GPU = {"CUDA_VISIBLE_DEVICES": ""}
NO_REGION = {"AWS_DEFAULT_REGION": "", "AWS_PROFILE": "", "AWS_DEFAULT_PROFILE": ""}
SM_SCRIPT = (
    "cluster=sm_jobs",
    "instance_type=ml.c5.2xlarge",
    "cluster.sm_jobs_config.output_path=s3://bucket/jobs",
    "cluster.sm_jobs_config.role=arn:aws:iam::123456789012:role/r",
    "preflight=false",
)

CASES: dict[str, tuple[tuple[str, ...], list[str]]] = {
    "typo in instance_type": (
        ("cluster=slurm", "instance_type=p5.48xlarg", "dry_run=true"),
        [
            "instance_type=p5.48xlarg: unknown instance type",
            "did you mean 'p5.48xlarge'",
            "instance_devices=gpu:<GPUs per node>",
        ],
    ),
    "unknown instance_type": (
        ("cluster=k8s", "container=example.com/train:1", "instance_type=banana", "dry_run=true"),
        ["instance_type=banana: unknown instance type", "instance_devices="],
    ),
    "unknown type with an explicit count only": (
        ("cluster=slurm", "instance_type=ml.p9.96xlarge", "training_cfg.run.ntasks_per_node=4"),
        ["instance_type=ml.p9.96xlarge: unknown instance type", "instance_devices="],
    ),
    "instance_devices in a wrong form": (
        ("cluster=slurm", "instance_type=p9.96xlarge", "instance_devices=tpu:4", "dry_run=true"),
        ["instance_devices='tpu:4'", "gpu:<GPUs per node>, neuron:<devices>"],
    ),
    "instance_devices for a known type": (
        ("cluster=slurm", "instance_type=p5.48xlarge", "instance_devices=gpu:4", "dry_run=true"),
        ["instance_devices=gpu:4", "instance_type=p5.48xlarge is known (8 x H100)"],
    ),
    "instance_devices without instance_type": (
        ("cluster=slurm", "instance_devices=gpu:4", "dry_run=true"),
        ["instance_devices=gpu:4", "set instance_type"],
    ),
    "image with a space": (
        ("cluster=slurm", "container='nvcr.io/nvidia/pytorch:24.01 py3'", "dry_run=true"),
        ["container='nvcr.io/nvidia/pytorch:24.01 py3'", "whitespace", "[registry/]name[:tag]"],
    ),
    "image with capitals and an empty tag": (
        ("cluster=slurm", "container=UPPER/Image::tag", "dry_run=true"),
        ["container='UPPER/Image::tag': not an image reference", "lowercase name"],
    ),
    "pyxis image with a bad name": (
        ("cluster=slurm", "container='nvcr.io#Nvidia/pytorch:24.01-py3'", "dry_run=true"),
        ["container='nvcr.io#Nvidia/pytorch:24.01-py3'", "not a pyxis image reference"],
    ),
    "checkout image on Kubernetes": (
        (
            "cluster=k8s",
            "container=example.com/train:1",
            "cluster.code_checkout_image=Bad:Image",
            "git.repo_url_or_path=https://example.com/code.git",
            "training_cfg.entry_script=train.py",
            "dry_run=true",
        ),
        ["cluster.code_checkout_image='Bad:Image'", "not an image reference"],
    ),
    "dry_run with wait": (
        ("dry_run=true", "wait=true"),
        ["dry_run=true and wait=true", "conflict"],
    ),
    "dry_run with --wait": (
        ("dry_run=true", "--wait"),
        ["dry_run=true and wait=true (or --wait) conflict"],
    ),
    "dry_run with submission-file-only": (
        ("cluster=slurm", "dry_run=true", "cluster.slurm_create_submission_file_only=true"),
        ["dry_run=true and cluster.slurm_create_submission_file_only=true conflict"],
    ),
    "GPU recipe as CPU processes here": (
        (OPEN_SFT, "cluster=local", "recipes.trainer.devices=8", "dry_run=true"),
        [
            "recipes.trainer.devices=8: cluster=local has no GPU on this machine",
            "cpu_processes=8",
        ],
    ),
    "cpu_processes disagrees with the recipe": (
        (OPEN_SFT, "cluster=local", "recipes.trainer.devices=2", "cpu_processes=4"),
        ["cpu_processes=4 does not match recipes.trainer.devices=2"],
    ),
    "Trainium on Kubernetes without an instance type": (
        (TRN1, "cluster=k8s", "container=example.com/neuron:1", "instance_type=none"),
        ["instance_type=none: a Trainium recipe on Kubernetes", "aws.amazon.com/neurondevice"],
    ),
    "recipe given as a file path": (
        ("recipes=/etc/hostname.yaml",),
        [
            "recipes=/etc/hostname: a recipe is a name under recipes_collection/recipes/",
            "--config-dir",
        ],
    ),
    "recipe path climbing out of the catalog": (
        ("recipes=../outside",),
        ["recipes=../outside: a recipe is a name", "--config-dir"],
    ),
    "shell syntax in a run name": (
        ("recipes.run.name=x$(id)",),
        [
            "recipes.run.name: cannot parse override 'recipes.run.name=x$(id)'",
            "mismatched input '('",
            "quote it",
        ],
    ),
    "s3 bucket name too short": (
        (
            OPEN_SFT,
            "cluster=slurm",
            "recipes.model.hf_model_name_or_path=org/model",
            "recipes.model.data.train_dir=s3://b/train",
            "dry_run=true",
        ),
        ["recipes.model.data.train_dir=s3://b/train: bucket 'b' is not an S3 bucket name", "3-63"],
    ),
    "s3 output bucket name too short": (
        (*SM_SCRIPT[:2], "cluster.sm_jobs_config.output_path=s3://b/o", "dry_run=true"),
        ["cluster.sm_jobs_config.output_path='s3://b/o': bucket 'b'", "3-63"],
    ),
    "sm_jobs without a region": (
        SM_SCRIPT,
        ["cluster.sm_jobs_config.region is not set and no AWS region is configured"],
    ),
}


@pytest.fixture
def clean_env(tmp_path: Path) -> dict[str, str]:
    """No GPU and no AWS region from this machine's own configuration."""
    return {**NO_GPU, **NO_REGION, "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config")}


def assert_one_line_error(proc: subprocess.CompletedProcess[str], *fragments: str) -> str:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_one_line_and_nothing_is_written(
    case: str, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    overrides, expected = CASES[case]
    work = tmp_path / "work"
    work.mkdir()
    (work / "train.py").write_text("print('train')\n")
    results = tmp_path / "results"
    proc = run_launcher(f"base_results_dir={results}", *overrides, env=clean_env, cwd=work)
    assert_one_line_error(proc, *expected)
    assert not results.exists(), "nothing may be written"
    assert sorted(p.name for p in work.iterdir()) == ["train.py"]


def test_base_results_dir_that_is_a_file(tmp_path: Path) -> None:
    taken = tmp_path / "taken"
    taken.write_text("")
    proc = run_launcher(f"base_results_dir={taken}/runs", "dry_run=true", env=NO_GPU)
    assert_one_line_error(proc, f"base_results_dir: '{taken}' is not a folder")
    assert taken.read_text() == ""


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    """A folder this user cannot write to: a read-only tmpfs for root, else mode 0555."""
    folder = tmp_path / "ro"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    mount = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mount.returncode != 0:
        pytest.skip(f"cannot mount a read-only tmpfs here: {mount.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=False)


def test_read_only_base_results_dir(read_only_dir: Path) -> None:
    proc = run_launcher(f"base_results_dir={read_only_dir}/runs", "dry_run=true", env=NO_GPU)
    assert_one_line_error(proc, f"base_results_dir: '{read_only_dir}' is read-only")
    assert list(read_only_dir.iterdir()) == []


def test_binary_entry_script_on_kubernetes(tmp_path: Path) -> None:
    script = tmp_path / "train.py"
    script.write_bytes(b"\x7fELF\x02\x01\x01\x00\xff\xfe" * 10)
    results = tmp_path / "results"
    proc = run_launcher(
        f"base_results_dir={results}",
        "cluster=k8s",
        "container=example.com/train:1",
        f"training_cfg.entry_script={script}",
        "dry_run=true",
    )
    assert_one_line_error(proc, f"training_cfg.entry_script='{script}': not a UTF-8 text file")
    assert not results.exists()


@pytest.mark.parametrize(
    ("key", "other"),
    [
        ("recipes.model.hf_model_name_or_path", "recipes.model.data.train_dir"),
        ("recipes.model.data.train_dir", "recipes.model.hf_model_name_or_path"),
    ],
)
def test_local_model_and_data_paths_are_checked_before_torchrun(
    key: str, other: str, tmp_path: Path
) -> None:
    present = tmp_path / "present"
    present.mkdir()
    missing = tmp_path / "missing"
    results = tmp_path / "results"
    proc = run_launcher(
        OPEN_SFT,
        "cluster=local",
        "recipes.trainer.devices=1",
        f"{key}={missing}",
        f"{other}={present}",
        f"base_results_dir={results}",
        env=NO_GPU,
    )
    assert_one_line_error(proc, f"{key}='{missing}': no such file or folder on this machine")
    assert not results.exists()


def test_unknown_commit_of_a_local_repository_fails_a_dry_run(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    git = ["git", "-c", "user.email=t@example.com", "-c", "user.name=t"]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "train.py").write_text("print('train')\n")
    subprocess.run([*git, "-C", str(repo), "add", "."], check=True)
    subprocess.run([*git, "-C", str(repo), "commit", "-qm", "x"], check=True)
    results = tmp_path / "results"
    common = (
        f"base_results_dir={results}",
        "cluster=slurm",
        f"git.repo_url_or_path={repo}",
        "training_cfg.entry_script=train.py",
        "dry_run=true",
    )
    bad = run_launcher(*common, "git.commit=zzz")
    assert_one_line_error(bad, "git.commit=zzz: no such commit in the local repository")
    assert not results.exists()
    good = run_launcher(*common, "git.commit=HEAD")
    assert good.returncode == 0, good.stderr


def test_unknown_region_name_from_the_environment(
    tmp_path: Path, clean_env: dict[str, str]
) -> None:
    results = tmp_path / "results"
    env = {**clean_env, "AWS_DEFAULT_REGION": "nowhere"}
    proc = run_launcher(f"base_results_dir={results}", *SM_SCRIPT, env=env, cwd=tmp_path)
    assert_one_line_error(proc, "AWS_DEFAULT_REGION='nowhere': not an AWS region name")
    assert not results.exists()


def _train_script(job_dir: Path) -> str:
    return (job_dir / "train_script.sh").read_text()


def test_custom_script_defaults_follow_the_instance_and_the_entry_script(tmp_path: Path) -> None:
    script = tmp_path / "train_llm.py"
    script.write_text("print('train')\n")
    results = tmp_path / "results"
    proc = run_launcher(
        f"base_results_dir={results}",
        "cluster=slurm",
        "instance_type=p5.48xlarge",
        f"training_cfg.entry_script={script}",
        "training_cfg.run.nodes=2",
        "dry_run=true",
    )
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in results.iterdir()) == ["train-llm"]
    job_dir = results / "train-llm"
    assert "--nproc-per-node=8" in _train_script(job_dir)
    assert (
        "#SBATCH --job-name=sagemaker-train-llm"
        in (job_dir / "sagemaker-train-llm_submission.sh").read_text()
    )
    assert "--nnodes=2" in _train_script(job_dir) or "2 node(s)" in proc.stdout


def test_custom_script_on_trainium_runs_one_process_per_neuroncore(tmp_path: Path) -> None:
    script = tmp_path / "train.py"
    script.write_text("print('train')\n")
    results = tmp_path / "results"
    proc = run_launcher(
        f"base_results_dir={results}",
        "cluster=slurm",
        "instance_type=trn1.32xlarge",
        f"training_cfg.entry_script={script}",
        "dry_run=true",
    )
    assert proc.returncode == 0, proc.stderr
    assert "--nproc-per-node=32" in _train_script(results / "train")


def test_instance_devices_runs_an_unknown_type(tmp_path: Path) -> None:
    results = tmp_path / "results"
    proc = run_launcher(
        f"base_results_dir={results}",
        "cluster=k8s",
        "container=example.com/train:1",
        "instance_type=p9.96xlarge",
        "instance_devices=gpu:4",
        "dry_run=true",
    )
    assert proc.returncode == 0, proc.stderr
    values = (results / "allreduce-smoke" / "k8s_template" / "values.yaml").read_text()
    assert "--nproc-per-node=4" in values
    assert "nvidia.com/gpu: '4'" in values, values


def test_cpu_processes_runs_a_gpu_recipe_on_the_cpu_when_asked(tmp_path: Path) -> None:
    model = tmp_path / "model"
    data = tmp_path / "data.jsonl"
    model.mkdir()
    data.write_text("{}\n")
    results = tmp_path / "results"
    proc = run_launcher(
        OPEN_SFT,
        "cluster=local",
        "recipes.trainer.devices=2",
        "cpu_processes=2",
        f"recipes.model.hf_model_name_or_path={model}",
        f"recipes.model.data.train_dir={data}",
        f"base_results_dir={results}",
        "dry_run=true",
        env=NO_GPU,
    )
    assert proc.returncode == 0, proc.stderr
    (job_dir,) = results.iterdir()
    assert "--nproc-per-node=2" in _train_script(job_dir)
