"""The launch contract around rendering: dry run, submission-file-only, secrets, imports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO, run_launcher

LLAMA = "recipes=training/llama/hf_llama3_8b_seq8k_gpu_p5x16_pretrain"
NAME = "recipes.run.name=llama-8b"
TOKEN = "ghp_not_a_real_token_123"
HF = "hf_not_a_real_token_456"
SDKS = ("boto3", "botocore", "kubernetes", "sagemaker", "jsonschema")  # never on the render path


def test_dry_run_writes_every_artifact_and_prints_the_sbatch_command(tmp_path: Path) -> None:
    proc = run_launcher(
        LLAMA,
        NAME,
        "cluster=slurm",
        "instance_type=p5.48xlarge",
        f"base_results_dir={tmp_path}",
        "dry_run=true",
    )
    assert proc.returncode == 0, proc.stderr
    job_dir = tmp_path / "llama-8b"
    record = json.loads((job_dir / "job.json").read_text())
    launch_dir = job_dir / "launches" / record["launch_id"]
    # The job reads its launch's own files; the top level shows them under HyperPod's names.
    submission = launch_dir / "sagemaker-llama-8b_submission.sh"
    assert f"submit with: sbatch --parsable {submission}" in proc.stdout
    for name in ("train_script.sh", "llama-8b_hydra.yaml", "launcher_cmd.log", "job.json"):
        assert (job_dir / name).is_file(), name
        assert (launch_dir / name).read_bytes() == (job_dir / name).read_bytes(), name
    assert record["submit"]["status"] == "dry_run"
    assert record["job_id"] is None if "job_id" in record else True
    assert not (job_dir / "code").exists(), "a dry run must not fetch code"


def test_submission_file_only_does_not_call_sbatch(tmp_path: Path) -> None:
    proc = run_launcher(
        "cluster=slurm",
        f"base_results_dir={tmp_path}",
        "cluster.slurm_create_submission_file_only=true",
        env={"PATH": "/nonexistent"},
    )
    assert proc.returncode == 0, proc.stderr
    assert "submit with: sbatch --parsable" in proc.stdout


def test_missing_sbatch_is_one_line_and_keeps_artifacts(tmp_path: Path) -> None:
    env = {"PATH": os.path.dirname(sys.executable)}
    proc = run_launcher("cluster=slurm", f"base_results_dir={tmp_path}", env=env)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "error: sbatch not found on PATH: run this on a Slurm login node, or use dry_run=true "
        "to only write the scripts"
    ]
    assert (tmp_path / "allreduce-smoke" / "train_script.sh").is_file()


def test_tokens_never_reach_files_output_or_argv_logs(tmp_path: Path) -> None:
    proc = run_launcher(
        LLAMA,
        NAME,
        "cluster=slurm",
        "instance_type=p5.48xlarge",
        f"base_results_dir={tmp_path}",
        "dry_run=true",
        "git.repo_url_or_path=https://git.example.com/adapter.git",
        f"git.token={TOKEN}",
        f"recipes.model.hf_access_token={HF}",
    )
    assert proc.returncode == 0, proc.stderr
    assert TOKEN not in proc.stdout + proc.stderr and HF not in proc.stdout + proc.stderr
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(files) >= 5
    for path in files:
        text = path.read_text()
        assert TOKEN not in text and HF not in text, path
    assert "git.token=****" in (tmp_path / "llama-8b" / "launcher_cmd.log").read_text()
    recipe = (tmp_path / "llama-8b" / "llama-8b_hydra.yaml").read_text()
    assert "hf_access_token: ${oc.env:HF_TOKEN,null}" in recipe


def test_code_is_cloned_once_with_the_token_kept_out_of_git_config(tmp_path: Path) -> None:
    repo = tmp_path / "adapter"
    (repo / "examples" / "llama").mkdir(parents=True)
    (repo / "examples" / "llama" / "llama_pretrain.py").write_text("print('hi')\n")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q", str(repo)], check=True)
    subprocess.run([*git, "-C", str(repo), "add", "."], check=True)
    subprocess.run([*git, "-C", str(repo), "commit", "-qm", "x"], check=True)
    url = "https://git.example.com/org/adapter.git"
    env = {  # route the https URL to the local repo, as a corporate mirror would
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": f"url.{repo}.insteadOf",
        "GIT_CONFIG_VALUE_0": url,
        "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}",
    }
    (tmp_path / "bin").mkdir()
    fake_sbatch = tmp_path / "bin" / "sbatch"
    fake_sbatch.write_text("#!/bin/sh\necho 4242\n")  # stands in for sbatch: prints a job id
    fake_sbatch.chmod(0o755)
    proc = run_launcher(
        LLAMA,
        NAME,
        "cluster=slurm",
        "instance_type=p5.48xlarge",
        f"base_results_dir={tmp_path / 'r'}",
        f"git.repo_url_or_path={url}",
        f"git.token={TOKEN}",
        "recipes.model.data.train_dir=/fsx/data/train",
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    job_dir = tmp_path / "r" / "llama-8b"
    record = json.loads((job_dir / "job.json").read_text())
    assert record["job_id"] == "4242"
    (checkout,) = (job_dir / "code").iterdir()
    assert (checkout / "examples" / "llama" / "llama_pretrain.py").is_file()
    assert record["resolved_commit"] and len(record["resolved_commit"]) == 40
    for path in job_dir.rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path


def test_rendering_imports_no_cloud_sdk(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-X",
            "importtime",
            str(REPO / "main.py"),
            LLAMA,
            NAME,
            "cluster=slurm",
            "instance_type=p5.48xlarge",
            f"base_results_dir={tmp_path}",
            "dry_run=true",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if "|" in line}
    assert "hyperpod_launcher.backends.base" in imported
    # The launch's own checks ran: the app applies the required values.
    assert {"hyperpod_launcher.cli.app", "hyperpod_launcher.spec.required"} <= imported
    assert "dry run: wrote" in proc.stdout
    for sdk in SDKS:
        assert not any(m == sdk or m.startswith(sdk + ".") for m in imported), sdk


def test_planning_in_process_loads_no_cloud_sdk() -> None:
    code = (
        "import sys; from hyperpod_launcher.launch.compose import plan; "
        f"plan([{LLAMA!r}, {NAME!r}, 'cluster=slurm', 'instance_type=p5.48xlarge']); "
        f"print([m for m in sys.modules if m.split('.')[0] in {SDKS!r}])"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_how_a_launch_runs_is_apart_from_the_job(tmp_path: Path) -> None:
    from dataclasses import fields

    from hyperpod_launcher.launch.compose import plan
    from hyperpod_launcher.spec.job import JobSpec, LaunchOptions

    assert not {f.name for f in fields(JobSpec)} & {f.name for f in fields(LaunchOptions)}
    sm = ("cluster=sm_jobs", "cluster.sm_jobs_config.output_path=s3://bucket/out")
    data = "+cluster.sm_jobs_config.inputs.s3.train=s3://bucket/train"
    base = (LLAMA, "instance_type=ml.p5.48xlarge", *sm, data, f"base_results_dir={tmp_path}")
    dry = plan((*base, "dry_run=true", "allow_concurrent=true"))
    waiting = plan((*base, "wait=true"))
    # The same job either way; only the launch options differ, and render reads their `wait`.
    assert dry.spec == waiting.spec
    assert dry.launch == LaunchOptions(True, None, True, dry.launch.overrides)
    assert waiting.launch.wait is True and waiting.launch.overrides[-1] == "wait=true"
    assert dry.request.payload["wait"] is False  # the cluster file's default
    assert waiting.request.payload["wait"] is True
