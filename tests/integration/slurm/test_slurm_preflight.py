"""`hyperpod-launch preflight` and `preflight=true` against the real Slurm testbed.

The testbed's partitions are `debug` (default) and `batch`, two nodes each. A folder the
nodes cannot see: the command runs in its own mount namespace with a tmpfs over the
results folder, so a marker written there is missing on the nodes (slurmd's namespace).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, require

pytestmark = pytest.mark.slurm
CUSTOM = ("cluster=slurm", "training_cfg.run.nodes=2")


def preflight(tmp_path: Path, *overrides: str, prefix: tuple[str, ...] = ()):
    env = {"HPL_STATE_DIR": str(tmp_path / "state"), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    import os

    return subprocess.run(
        [*prefix, sys.executable, "-m", "hyperpod_launcher", "preflight", *CUSTOM, *overrides],
        capture_output=True, text=True, cwd=REPO, env={**os.environ, **env}, check=False,
        timeout=300,
    )  # fmt: skip


def lines(proc: subprocess.CompletedProcess[str]) -> dict[str, str]:
    found = {}
    for line in proc.stdout.splitlines():
        status, _, rest = line.partition(" ")
        name, _, message = rest.strip().partition(": ")
        found[name] = f"{status} {message}"
    return found


def test_a_job_that_fits_passes_every_check(slurm_cluster: None, tmp_path: Path) -> None:
    proc = preflight(tmp_path, f"base_results_dir={tmp_path / 'results'}")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    got = lines(proc)
    assert set(got) == {
        "slurm sbatch", "slurm image", "slurm partition", "slurm account", "slurm qos",
        "slurm sbatch --test-only", "slurm shared folder",
    }  # fmt: skip
    assert all(v.startswith("ok ") for v in got.values()), got
    assert "partition 'debug' has 2 nodes, the job needs 2" in got["slurm partition"]
    assert "would start at" in got["slurm sbatch --test-only"]
    assert "a compute node sees base_results_dir" in got["slurm shared folder"]
    assert not (tmp_path / "results" / "allreduce-smoke").exists()  # nothing written, queued


def test_unknown_partition_fails_with_the_partitions_there_are(
    slurm_cluster: None, tmp_path: Path
) -> None:
    proc = preflight(tmp_path, f"base_results_dir={tmp_path}", "cluster.partition=gpu")
    assert proc.returncode == 1
    got = lines(proc)
    assert got["slurm partition"] == (
        "fail partition 'gpu' does not exist; fix: set cluster.partition to one of batch, debug"
    )
    assert got["slurm sbatch --test-only"].startswith("fail sbatch --test-only refused the job")
    assert "Invalid partition" in got["slurm sbatch --test-only"]


def test_too_many_nodes_fail(slurm_cluster: None, tmp_path: Path) -> None:
    proc = preflight(tmp_path, f"base_results_dir={tmp_path}", "training_cfg.run.nodes=3")
    assert proc.returncode == 1
    got = lines(proc)
    assert got["slurm partition"].startswith(
        "fail the job asks for 3 nodes, partition 'debug' has 2"
    )
    assert got["slurm sbatch --test-only"].startswith("fail ")


def test_a_folder_the_nodes_cannot_see_fails(slurm_cluster: None, tmp_path: Path) -> None:
    unshare = shutil.which("unshare")
    require(unshare is not None, "unshare (util-linux)")
    hidden = tmp_path / "private"
    hidden.mkdir()
    script = f'mount -t tmpfs hpl-private {hidden} && exec "$@"'
    proc = preflight(
        tmp_path,
        f"base_results_dir={hidden}",
        prefix=(str(unshare), "--mount", "--propagation", "private", "sh", "-c", script, "sh"),
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    got = lines(proc)
    assert got["slurm shared folder"] == (
        f"fail base_results_dir {hidden} is not visible from the compute nodes (a file written "
        "here is missing there); fix: set base_results_dir to shared storage every node mounts "
        "(e.g. /fsx/results)"
    )


def test_an_unreadable_sqsh_image_is_reported(slurm_cluster: None, tmp_path: Path) -> None:
    image = tmp_path / "missing.sqsh"
    proc = preflight(tmp_path, f"base_results_dir={tmp_path}", f"container={image}")
    got = lines(proc)
    assert got["slurm image"].startswith(f"warn container {image} is not readable on this host")
    assert got["slurm shared folder"].startswith(
        f"fail container {image} is not readable on the compute nodes"
    )
    assert proc.returncode == 1


def test_a_launch_with_preflight_true_stops_before_queueing(
    slurm_cluster: None, tmp_path: Path
) -> None:
    import os

    env = {"HPL_STATE_DIR": str(tmp_path / "state"), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    proc = subprocess.run(
        [sys.executable, str(REPO / "main.py"), *CUSTOM, f"base_results_dir={tmp_path / 'r'}",
         "cluster.partition=gpu", "preflight=true"],
        capture_output=True, text=True, cwd=REPO, env={**os.environ, **env}, check=False,
        timeout=300,
    )  # fmt: skip
    assert proc.returncode == 1
    assert "fail slurm partition: partition 'gpu' does not exist" in proc.stdout
    assert proc.stderr.strip().splitlines()[-1] == (
        "error: preflight failed (see the lines above); nothing was submitted"
    )
    assert not (tmp_path / "r" / "allreduce-smoke").exists()
