"""A launch is on record before its job starts, and a stopped or killed launcher leaves every
started job findable and cancellable (real torchrun jobs on this machine). A relaunch of a
name whose job still runs is refused unless allowed."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from tests.conftest import REPO, require, run_cli, run_launcher

SCRIPTS = REPO / "tests" / "fixtures" / "scripts"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    require(importlib.util.find_spec("torch") is not None, "torch (torchrun)")
    return {"HPL_STATE_DIR": str(tmp_path / "state")}


def overrides(tmp_path: Path, name: str, *extra: str) -> list[str]:
    return [
        f"base_results_dir={tmp_path / 'results'}",
        f"training_cfg.entry_script={SCRIPTS / 'sleep.py'}",
        f"training_cfg.run.name={name}",
        "training_cfg.run.ntasks_per_node=1",
        *extra,
    ]


def status(env: dict[str, str], ref: str) -> dict:
    proc = run_cli("status", ref, "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def group_of(env: dict[str, str], tmp_path: Path, name: str) -> int:
    """The job's process group, once its run script has started."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = list((tmp_path / "results" / name).glob("local-*.pid"))
        if found and found[0].read_text().strip():
            return int(found[0].read_text())
        time.sleep(0.2)
    raise AssertionError("the job never started")


def group_alive(pgid: int) -> bool:
    """Some process of the group still runs (zombies, which nothing may reap here, do not)."""
    listing = subprocess.run(
        ["ps", "-e", "-o", "pgid=,stat="], capture_output=True, text=True, check=True
    ).stdout
    return any(
        int(group) == pgid and not state.startswith("Z")
        for group, state in (line.split() for line in listing.splitlines())
    )


def wait_until_sleeping(tmp_path: Path, name: str) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        logs = list((tmp_path / "results" / name).glob("log-*.out"))
        if logs and "sleeping" in logs[0].read_text():
            return
        time.sleep(0.3)
    raise AssertionError("the job never printed")


def cancel_and_check_gone(env: dict[str, str], ref: str, pgid: int) -> None:
    proc = run_cli("cancel", ref, env=env)
    assert proc.returncode == 0, proc.stderr
    assert f"cancelled local job {pgid}" in proc.stdout
    assert not group_alive(pgid)
    assert status(env, ref)["state"] == "cancelled"


def test_relaunch_while_running_is_refused_unless_allowed(
    env: dict[str, str], tmp_path: Path
) -> None:
    first = run_launcher(*overrides(tmp_path, "busy", "wait=false"), env=env)
    assert first.returncode == 0, first.stderr
    pgid = group_of(env, tmp_path, "busy")
    launch_id = json.loads((tmp_path / "results" / "busy" / "job.json").read_text())["launch_id"]
    again = run_launcher(*overrides(tmp_path, "busy", "wait=false"), env=env)
    assert again.returncode == 2
    (line,) = again.stderr.strip().splitlines()
    assert line.startswith(f"error: training_cfg.run.name=busy: its launch {launch_id}")
    assert "still running" in line and "allow_concurrent=true" in line
    assert f"hyperpod-launch cancel {launch_id}" in line
    assert len(list((tmp_path / "results" / "busy" / "launches").iterdir())) == 1
    beside = run_launcher(
        *overrides(tmp_path, "busy", "wait=false", "allow_concurrent=true"), env=env
    )
    assert beside.returncode == 0, beside.stderr
    second = int(json.loads((tmp_path / "results" / "busy" / "job.json").read_text())["job_id"])
    assert second != pgid
    cancel_and_check_gone(env, launch_id, pgid)
    cancel_and_check_gone(env, "busy", second)
    # Both finished: a relaunch is a new attempt of the run.
    after = run_launcher(*overrides(tmp_path, "busy", "wait=false"), env=env)
    assert after.returncode == 0, after.stderr
    cancel_and_check_gone(env, "busy", group_of_newest(tmp_path, "busy"))


def group_of_newest(tmp_path: Path, name: str) -> int:
    record = json.loads((tmp_path / "results" / name / "job.json").read_text())
    return int(record["job_id"])


def start_foreground(env: dict[str, str], tmp_path: Path, name: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(REPO / "main.py"), *overrides(tmp_path, name)],
        env={**os.environ, **env},
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_stop_signal_stops_a_foreground_job_and_records_it(
    env: dict[str, str], tmp_path: Path, signum: int
) -> None:
    launcher = start_foreground(env, tmp_path, "fg")
    pgid = group_of(env, tmp_path, "fg")
    wait_until_sleeping(tmp_path, "fg")
    launcher.send_signal(signum)
    out, err = launcher.communicate(timeout=120)
    assert launcher.returncode == 1, out + err
    assert err.strip().splitlines()[-1].startswith("error: interrupted; the job was stopped")
    assert "Traceback" not in err
    deadline = time.monotonic() + 30
    while group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not group_alive(pgid)
    listing = run_cli("jobs", env=env).stdout
    assert "fg" in listing and "failed" in listing, listing


def test_a_killed_launcher_leaves_its_foreground_job_on_record_and_cancellable(
    env: dict[str, str], tmp_path: Path
) -> None:
    launcher = start_foreground(env, tmp_path, "orphan")
    pgid = group_of(env, tmp_path, "orphan")
    launcher.kill()  # kill -9: no handler runs
    launcher.communicate(timeout=60)
    assert group_alive(pgid)  # the job runs on, in its own session
    found = status(env, "orphan")
    assert (found["state"], found["backend_state"]) == ("running", "running")
    assert "orphan" in run_cli("jobs", env=env).stdout
    cancel_and_check_gone(env, "orphan", pgid)


def test_status_reports_survivors_of_a_dead_runner_and_cancel_stops_them(
    env: dict[str, str], tmp_path: Path
) -> None:
    launched = run_launcher(*overrides(tmp_path, "survivor", "wait=false"), env=env)
    assert launched.returncode == 0, launched.stderr
    pgid = group_of(env, tmp_path, "survivor")
    wait_until_sleeping(tmp_path, "survivor")
    os.kill(pgid, signal.SIGKILL)  # the run script dies; torchrun and its worker do not
    time.sleep(1)
    found = status(env, "survivor")
    assert (found["state"], found["backend_state"]) == ("running", "runner gone"), found
    assert f"of group {pgid} still run" in found["detail"]
    cancel_and_check_gone(env, "survivor", pgid)


def test_a_failed_record_after_the_job_was_accepted_warns_and_exits_0(
    env: dict[str, str], tmp_path: Path
) -> None:
    assert run_cli("jobs", env=env).returncode == 0  # makes the index
    with closing(sqlite3.connect(Path(env["HPL_STATE_DIR"]) / "jobs.db")) as db, db:
        db.execute(
            "CREATE TRIGGER refuse AFTER UPDATE ON launches WHEN NEW.submit_status = 'submitted' "
            "BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END"
        )
    proc = run_launcher(*overrides(tmp_path, "recorded", "wait=false"), env=env)
    assert proc.returncode == 0, proc.stderr
    (warning,) = proc.stderr.strip().splitlines()
    job_id = json.loads((tmp_path / "results" / "recorded" / "job.json").read_text())["job_id"]
    assert warning.startswith(f"warning: local job {job_id} (recorded) was submitted, but")
    assert f"submitted local job {job_id}" in proc.stdout
    # The record made before the submit still finds it.
    cancel_and_check_gone(env, "recorded", int(job_id))


def test_a_read_only_results_folder_is_one_line_and_leaves_no_folder(
    env: dict[str, str], tmp_path: Path
) -> None:
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders; the full-disk test covers this path")
    results = tmp_path / "results"
    results.mkdir()
    results.chmod(0o555)
    proc = run_launcher(*overrides(tmp_path, "ro", "wait=false"), env=env)
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith(f"error: base_results_dir: cannot write the job folder {results}/ro")
    assert not (results / "ro").exists()


@pytest.fixture
def full_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A tiny tmpfs, filled up."""
    folder = tmp_path / "full"
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)],
        capture_output=True,
        check=False,
    )
    require(mounted.returncode == 0, "mounting a tmpfs (needs root)")
    try:
        with (folder / "filler").open("wb") as filler, contextlib.suppress(OSError):
            filler.write(b"\0" * 128 * 1024)
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def test_a_full_results_folder_is_one_line_before_anything_runs(
    env: dict[str, str], tmp_path: Path, full_tmpfs: Path
) -> None:
    proc = run_launcher(
        *overrides(tmp_path, "full", "wait=false", f"base_results_dir={full_tmpfs / 'results'}"),
        env=env,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith(
        f"error: base_results_dir: cannot write the job folder {full_tmpfs}/results/full"
    )
    assert "No space left on device" in line
    assert not (full_tmpfs / "results").exists()
    assert "no launches yet" in run_cli("jobs", env=env).stdout


def test_a_full_state_folder_is_one_line_before_anything_runs(
    tmp_path: Path, full_tmpfs: Path
) -> None:
    require(importlib.util.find_spec("torch") is not None, "torch (torchrun)")
    env = {"HPL_STATE_DIR": str(full_tmpfs / "state")}
    proc = run_launcher(*overrides(tmp_path, "nostate", "wait=false"), env=env)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith(f"error: the job index {full_tmpfs}/state/jobs.db cannot be used")
    assert "full" in line
    assert not list((tmp_path / "results" / "nostate").glob("local-*.pid"))  # nothing started


def test_torchruns_per_rank_copies_stay_in_the_launch_folder(
    env: dict[str, str], tmp_path: Path
) -> None:
    temp = tmp_path / "temp"
    temp.mkdir()
    proc = run_launcher(
        f"base_results_dir={tmp_path / 'results'}",
        f"training_cfg.entry_script={SCRIPTS / 'ranks.py'}",
        "training_cfg.run.name=tee",
        env={**env, "TMPDIR": str(temp)},
    )
    assert proc.returncode == 0, proc.stderr
    assert [p.name for p in temp.iterdir() if "torchelastic" in p.name] == []
    launch_id = json.loads((tmp_path / "results" / "tee" / "job.json").read_text())["launch_id"]
    copies = list((tmp_path / "results" / "tee" / "launches" / launch_id / "torchrun").rglob("*"))
    texts = [p.read_text() for p in copies if p.is_file()]
    assert any("hello from rank 1" in text for text in texts), copies


def test_a_job_whose_folder_was_deleted_is_followed_and_cancelled_from_the_index(
    env: dict[str, str], tmp_path: Path
) -> None:
    launched = run_launcher(*overrides(tmp_path, "deleted", "wait=false"), env=env)
    assert launched.returncode == 0, launched.stderr
    pgid = group_of(env, tmp_path, "deleted")
    wait_until_sleeping(tmp_path, "deleted")
    shutil.rmtree(tmp_path / "results" / "deleted")
    found = status(env, "deleted")
    assert (found["state"], found["job_id"]) == ("running", str(pgid))
    assert run_cli("logs", "deleted", env=env).returncode == 0
    proc = run_cli("cancel", "deleted", env=env)
    assert proc.returncode == 0, proc.stderr
    assert f"cancelled local job {pgid} (its job folder" in proc.stdout
    assert not group_alive(pgid)
