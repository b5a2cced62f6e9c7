"""A job folder must be the user's own; paths the job mounts hold no comma; the Slurm job name
prefix follows the run-name rule. Each refusal is one line, exit 2, before anything is written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, run_launcher

SMOKE = ("cluster=local", "training_cfg.run.name=job", "dry_run=true")
LLAMA = (
    "recipes=training/llama/hf_llama3_8b_seq8k_gpu_p5x16_pretrain",
    "cluster=slurm",
    "instance_type=p5.48xlarge",
    "dry_run=true",
)


def one_line(proc) -> str:  # type: ignore[no-untyped-def]
    assert proc.returncode == 2, proc.stdout + proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    return line


@pytest.mark.parametrize("mode", [0o775, 0o757])
def test_a_job_folder_others_may_write_to_is_refused(mode: int, tmp_path: Path) -> None:
    job_dir = tmp_path / "job"
    job_dir.mkdir()
    job_dir.chmod(mode)
    line = one_line(run_launcher(f"base_results_dir={tmp_path}", *SMOKE))
    assert line == (
        f"error: job folder {job_dir} is writable by group or others (mode {mode:o}): another "
        "user could change its scripts before the job starts; run chmod go-w "
        f"{job_dir} (a shared group: HPL_ALLOW_GROUP_WRITABLE=1)"
    )
    assert sorted(p.name for p in job_dir.iterdir()) == []


def test_a_shared_group_may_opt_in_but_others_never(tmp_path: Path) -> None:
    job_dir = tmp_path / "job"
    job_dir.mkdir()
    job_dir.chmod(0o775)
    opt_in = {"HPL_ALLOW_GROUP_WRITABLE": "1"}
    proc = run_launcher(f"base_results_dir={tmp_path}", *SMOKE, env=opt_in)
    assert proc.returncode == 0, proc.stderr
    job_dir.chmod(0o777)
    assert "writable by group or others" in one_line(
        run_launcher(f"base_results_dir={tmp_path}", *SMOKE, env=opt_in)
    )


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a folder to another user needs root")
def test_a_job_folder_of_another_user_is_refused(tmp_path: Path) -> None:
    job_dir = tmp_path / "job"
    job_dir.mkdir(mode=0o755)
    os.chown(job_dir, 12345, -1)
    line = one_line(run_launcher(f"base_results_dir={tmp_path}", *SMOKE))
    assert line == (
        f"error: job folder {job_dir} belongs to another user (uid 12345); choose a "
        "base_results_dir or run name of your own"
    )


def test_a_new_job_folder_is_not_group_writable_whatever_the_umask(tmp_path: Path) -> None:
    launcher = [sys.executable, str(REPO / "main.py"), f"base_results_dir={tmp_path}", *SMOKE]
    with_umask = ["sh", "-c", 'umask 002 && exec "$0" "$@"', *launcher]
    done = subprocess.run(with_umask, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "job").stat().st_mode & 0o777 == 0o755
    again = run_launcher(f"base_results_dir={tmp_path}", *SMOKE)  # a relaunch is accepted
    assert again.returncode == 0, again.stderr


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("base_results_dir={tmp},/etc", "base_results_dir"),
        ("recipes.exp_manager.exp_dir=/fsx/exp,/etc", "recipes.exp_manager.exp_dir"),
    ],
)
def test_a_comma_in_a_mounted_path_is_refused(override: str, key: str, tmp_path: Path) -> None:
    value = override.split("=", 1)[1].format(tmp=tmp_path)
    results = [] if key == "base_results_dir" else [f"base_results_dir={tmp_path}"]
    data = "recipes.model.data.train_dir=/fsx/d"
    proc = run_launcher(*results, *LLAMA, data, f"{key}='{value}'")
    assert one_line(proc) == (
        f"error: {key}={value!r}: a comma is not allowed in a path the job mounts (container "
        "mount lists are comma-separated)"
    )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("prefix", ["../../x-", "/tmp/x-", "a b"])
def test_a_slurm_job_name_prefix_follows_the_run_name_rule(prefix: str, tmp_path: Path) -> None:
    proc = run_launcher(
        f"base_results_dir={tmp_path}",
        *LLAMA,
        "recipes.model.data.train_dir=/fsx/d",
        f"cluster.job_name_prefix='{prefix}'",
    )
    assert one_line(proc).startswith(
        f"error: cluster.job_name_prefix={prefix!r} is not a safe job name prefix"
    )
    assert list(tmp_path.iterdir()) == []
