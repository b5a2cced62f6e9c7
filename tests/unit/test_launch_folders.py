"""Each launch's files live in its own folder, which no later launch changes; the job folder's
top level shows the newest launch and nothing of another backend's launch."""

from __future__ import annotations

import json
import os
from pathlib import Path

from hyperpod_launcher.jobs.records import JobRecord
from hyperpod_launcher.prepare.jobdir import JobDir
from tests.conftest import run_launcher


def _launch(folder: Path, launch_id: str, files: dict[str, str]) -> JobDir:
    jobdir = JobDir(folder, launch_id)
    artifacts = [*jobdir.write_all({k: (v, 0o644) for k, v in files.items()}), "job.json"]
    jobdir.write_record(
        JobRecord("run", "slurm", str(folder), launch_id, artifacts=tuple(artifacts))
    )
    return jobdir


def _top(folder: Path) -> set[str]:
    return {
        str(p.relative_to(folder))
        for p in folder.rglob("*")
        if p.is_file() and "launches" not in p.parts and not p.name.startswith(".")
    }


def test_a_relaunch_changes_no_file_of_the_earlier_launch(tmp_path: Path) -> None:
    first = _launch(tmp_path, "A", {"train_script.sh": "A", "scripts/entry.py": "A", "x.sh": "A"})
    _launch(tmp_path, "B", {"train_script.sh": "B", "other.sh": "B"})
    a, b = tmp_path / "launches" / "A", tmp_path / "launches" / "B"
    assert (a / "train_script.sh").read_text() == "A" and (
        a / "scripts/entry.py"
    ).read_text() == "A"
    assert json.loads((a / "job.json").read_text())["launch_id"] == "A"
    # On top: the newest launch, under its names, and nothing the newest launch lacks.
    assert _top(tmp_path) == {"train_script.sh", "other.sh", "job.json"}
    for name in _top(tmp_path):
        assert os.path.samefile(tmp_path / name, b / name), name
    assert not (tmp_path / "scripts").exists()
    # A later update of the earlier launch's record (a cancel, say) stays in its folder.
    first.write_record(JobRecord("run", "slurm", str(tmp_path), "A", cancelled_at="now"))
    assert json.loads((a / "job.json").read_text())["cancelled_at"] == "now"
    assert json.loads((tmp_path / "job.json").read_text())["launch_id"] == "B"


def test_files_of_a_launch_by_an_earlier_version_are_kept_in_its_launch_folder(
    tmp_path: Path,
) -> None:
    # Earlier versions wrote the newest launch's files on top only.
    (tmp_path / "train_script.sh").write_text("old")
    (tmp_path / "old_only.sh").write_text("old")
    record = {"name": "run", "backend": "slurm", "job_dir": str(tmp_path), "launch_id": "OLD"}
    record["artifacts"] = ["train_script.sh", "old_only.sh", "job.json"]
    (tmp_path / "job.json").write_text(json.dumps(record))
    _launch(tmp_path, "NEW", {"train_script.sh": "new"})
    old = tmp_path / "launches" / "OLD"
    assert (old / "train_script.sh").read_text() == "old"
    assert (old / "old_only.sh").read_text() == "old"
    assert json.loads((old / "job.json").read_text())["launch_id"] == "OLD"
    assert _top(tmp_path) == {"train_script.sh", "job.json"}
    assert (tmp_path / "train_script.sh").read_text() == "new"


def test_a_relaunch_on_another_backend_leaves_none_of_the_earlier_scripts_on_top(
    tmp_path: Path,
) -> None:
    common = (f"base_results_dir={tmp_path}", "dry_run=true")
    slurm = run_launcher(*common, "cluster=slurm")
    assert slurm.returncode == 0, slurm.stderr
    local = run_launcher(*common, "cluster=local")
    assert local.returncode == 0, local.stderr
    job_dir = tmp_path / "allreduce-smoke"
    record = json.loads((job_dir / "job.json").read_text())
    assert record["backend"] == "local"
    assert _top(job_dir) == set(record["artifacts"])
    assert not list(job_dir.glob("*_submission.sh"))
    (earlier,) = (p for p in (job_dir / "launches").iterdir() if p.name != record["launch_id"])
    assert list(earlier.glob("*_submission.sh"))
