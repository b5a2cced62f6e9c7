"""On the real Slurm testbed: `jobs` and `status` agree, and a failure is told by its cause
(the first failed rank, its node, exit code and last error line), not by the SIGTERM that
srun then sent the healthy node."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
from contextlib import closing
from pathlib import Path

import pytest

from tests.conftest import REPO, run_cli, run_launcher

pytestmark = pytest.mark.slurm
SCRIPTS = REPO / "tests" / "fixtures" / "scripts"


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, slurm_cluster: None) -> dict[str, str]:
    return {"HPL_STATE_DIR": str(tmp_path_factory.mktemp("state"))}


def launch(env: dict[str, str], results: Path, name: str, script: str, *extra: str):
    return run_launcher(
        "cluster=slurm",
        f"base_results_dir={results}",
        "cluster.exclusive=false",
        f"training_cfg.run.name={name}",
        f"training_cfg.entry_script={SCRIPTS / script}",
        "training_cfg.run.ntasks_per_node=1",
        "training_cfg.run.nodes=2",
        "--wait",
        *extra,
        env=env,
    )


def status(env: dict[str, str], ref: str) -> dict:
    proc = run_cli("status", ref, "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def rows(listing: str) -> dict[str, list[str]]:
    """`jobs` rows by name, split on the column gaps (two spaces or more)."""
    header, *lines = listing.splitlines()
    assert re.split(r"\s{2,}", header) == [
        "NAME",
        "BACKEND",
        "JOB ID",
        "STATE",
        "PROGRESS",
        "SUBMITTED",
        "JOB FOLDER",
    ], header
    table = {}
    for line in lines:
        cells = re.split(r"\s{2,}", line)
        assert len(cells) == 7, f"columns run together: {line!r}"
        table[cells[0]] = cells
    return table


def test_jobs_agrees_with_status_and_names_the_first_failed_rank(
    env: dict[str, str], tmp_path: Path
) -> None:
    ok = launch(env, tmp_path, "two-nodes", "ranks.py")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    failed = launch(env, tmp_path, "rank1-fails", "fail_rank1.py")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "rank 1 on node2 exited with code 3: error: shard 7 is corrupt" in failed.stdout

    done = status(env, "two-nodes")
    assert (done["state"], done["backend_state"], done["exit_code"]) == (
        "succeeded",
        "COMPLETED",
        0,
    )
    cause = status(env, "rank1-fails")
    assert (cause["state"], cause["backend_state"], cause["exit_code"]) == ("failed", "FAILED", 3)
    assert cause["failure"] == {
        "rank": 1,
        "host": "node2",
        "exit_code": 3,
        "error": "error: shard 7 is corrupt",
    }
    shown = run_cli("status", "rank1-fails", env=env).stdout
    assert "failed (FAILED): rank 1 on node2 exited with code 3: error: shard 7 is corrupt" in shown

    table = rows(run_cli("jobs", env=env).stdout)
    assert table["two-nodes"][3] == "succeeded (COMPLETED)"
    assert table["rank1-fails"][3] == "failed (FAILED) rank 1 on node2: exit 3"
    for name, cells in table.items():
        assert cells[4] == "-"  # progress shows for running jobs only
        assert cells[5].endswith("+00:00") and cells[6] == str(tmp_path / name)


def test_a_job_slurm_no_longer_knows_does_not_hide_the_others(
    env: dict[str, str], tmp_path: Path
) -> None:
    ok = launch(env, tmp_path, "known", "ranks.py", "training_cfg.run.nodes=1")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    known = status(env, "known")
    with closing(sqlite3.connect(Path(env["HPL_STATE_DIR"]) / "jobs.db")) as index, index:
        index.execute(
            "INSERT INTO launches (launch_id, name, backend, job_id, job_dir, submitted_at, "
            "submit_status, record) SELECT 'forgotten-launch', 'forgotten', backend, "
            "'99999999', job_dir, submitted_at, submit_status, record FROM launches "
            "ORDER BY seq DESC LIMIT 1"
        )
    listing = subprocess.run(
        ["squeue", "--noheader", "--jobs=99999999"], capture_output=True, text=True, check=False
    )
    assert not listing.stdout.strip()  # the testbed really has no such job
    table = rows(run_cli("jobs", env=env).stdout)
    assert table["known"][3] == f"{known['state']} ({known['backend_state']})"
    assert table["forgotten"][3] == "unknown (UNKNOWN)"
