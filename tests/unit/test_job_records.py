"""Job records are typed: job.json and the index round-trip through JobRecord; the index of
earlier versions is migrated, and records they wrote still load."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import pytest

from hyperpod_launcher.cli import job_commands as commands
from hyperpod_launcher.cli import main as cli
from hyperpod_launcher.jobs import follow as lifecycle
from hyperpod_launcher.jobs import index as job_index
from hyperpod_launcher.jobs import records
from hyperpod_launcher.jobs.records import JobRecord
from hyperpod_launcher.prepare.jobdir import JobDir
from tests.conftest import run_cli

# An index line exactly as launches before JobRecord wrote it.
OLD_LINE = (
    '{"launch_id": "20261120-101010-ab12", "name": "llama-8b", "backend": "slurm", '
    '"job_id": 4711, "job_dir": "/results/llama-8b", "submitted_at": "2026-11-20T10:10:10+00:00"}'
)
# A job.json as launches before JobRecord wrote it (a key this version does not know included).
OLD_JOB_JSON = {
    "schema_version": 1,
    "name": "llama-8b",
    "launch_id": "20261120-101010-ab12",
    "backend": "k8s",
    "mode": "recipe",
    "recipe": "training/llama/hf_llama3_8b_seq8k_gpu_p5x16_pretrain",
    "job_dir": "/results/llama-8b",
    "launcher_version": "0.1.0",
    "submitted_at": "2026-11-20T10:10:10+00:00",
    "nodes": 2,
    "procs_per_node": 8,
    "instance_type": "p5.48xlarge",
    "image": "img:1",
    "code": {"location": None, "branch": None, "commit": None, "checkout_dir": None},
    "overrides": ["cluster=k8s"],
    "recipe_sha256": "0" * 64,
    "artifacts": ["job.json", "k8s_template/values.yaml"],
    "submit": {
        "command": "helm install llama-8b /results/llama-8b/k8s_template",
        "status": "submitted",
    },
    "job_id": "default/llama-8b",
    "resolved_commit": None,
    "details": {"namespace": "default", "release": "llama-8b"},
    "cancelled_at": "2026-11-20T11:00:00+00:00",
    "written_by_a_later_version": {"kept": True},
}


def _old_index(data: bytes) -> Path:
    old = job_index.index_path().with_name("jobs.jsonl")
    old.parent.mkdir(parents=True, exist_ok=True)
    old.write_bytes(data)
    return old


def test_an_index_of_an_earlier_version_is_migrated_once_and_kept(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Unreadable lines: not JSON, a record without its backend, a bad byte, a torn last line.
    old = _old_index(
        OLD_LINE.encode()
        + b"\nnot json\n"
        + b'{"name": "no-backend"}\n'
        + b'{"name": "bad-\xff-byte", "backend": "slurm", "job_dir": "/r"}\n'
        + OLD_LINE.replace("4711", "4712").replace("ab12", "cd34").encode()
        + b'\n{"launch_id": "torn", "na'
    )
    first, second = job_index.latest(None)
    assert first == JobRecord(
        name="llama-8b",
        backend="slurm",
        job_dir="/results/llama-8b",
        launch_id="20261120-101010-ab12",
        job_id="4711",
        submitted_at="2026-11-20T10:10:10+00:00",
    )
    assert (second.job_id, second.launch_id) == ("4712", "20261120-101010-cd34")
    assert not first.complete  # the details live in job.json
    note = capsys.readouterr().err
    assert "moved 2 launch(es)" in note and "skipped 4 unreadable line(s)" in note
    assert not old.exists()
    assert old.with_name("jobs.jsonl.migrated").read_bytes().startswith(OLD_LINE.encode())
    # Once: a later command neither migrates again nor says so.
    assert len(job_index.latest(None)) == 2
    assert capsys.readouterr().err == ""


def test_a_launch_is_one_row_updated_in_place(tmp_path: Path) -> None:
    record = JobRecord.from_dict(OLD_JOB_JSON)
    submitting = dataclasses.replace(record, job_id=None, submit_status="submitting")
    job_index.put(submitting)
    (entry,) = job_index.latest(None)
    assert (entry.job_id, entry.submit_status) == (None, "submitting")
    job_index.put(record)
    (entry,) = job_index.latest(None)
    assert [getattr(entry, key) for key in job_index.LISTED] == [
        getattr(record, key) for key in job_index.LISTED
    ]
    # No job folder: the index's copy of the whole record answers.
    assert job_index.full(entry) == record
    assert job_index.resolve("llama-8b") == record
    assert job_index.resolve("default/llama-8b") == record
    assert job_index.resolve(str(record.launch_id)) == record


def test_the_newest_launches_are_listed_oldest_first() -> None:
    for i in range(30):
        job_index.put(JobRecord(f"n{i}", "local", f"/r/n{i}", launch_id=f"L{i}"))
    assert [e.name for e in job_index.latest(3)] == ["n27", "n28", "n29"]
    assert len(job_index.latest(None)) == 30
    assert job_index.resolve("n4").launch_id == "L4"


def test_a_corrupt_index_is_one_line_with_the_way_out(
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = job_index.index_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\xff" * 4096)
    for argv in (["jobs"], ["status", "x"], ["cancel", "x"]):
        assert cli.main(argv) == 1
        (line,) = capsys.readouterr().err.splitlines()
        assert str(path) in line and f"mv {path} {path}.broken" in line


def test_job_json_of_an_earlier_version_round_trips(tmp_path: Path) -> None:
    record = JobRecord.from_dict(OLD_JOB_JSON)
    assert record.complete and record.submit_status == "submitted"
    assert record.details["release"] == "llama-8b" and record.overrides == ("cluster=k8s",)
    assert record.to_dict() == OLD_JOB_JSON

    folder = tmp_path / "llama-8b"
    JobDir(folder, str(record.launch_id)).write_record(record)
    assert json.loads((folder / "job.json").read_text()) == OLD_JOB_JSON
    assert records.read_record(folder) == record
    job_index.put(JobRecord.from_dict({**OLD_JOB_JSON, "job_dir": str(folder)}))
    (listed,) = job_index.latest(None)
    assert not listed.complete
    assert job_index.full(listed).details == OLD_JOB_JSON["details"]


def test_jobs_lists_lines_of_an_earlier_version(capsys: pytest.CaptureFixture[str]) -> None:
    never_submitted = json.dumps({**json.loads(OLD_LINE), "name": "broken", "job_id": None})
    _old_index(never_submitted.encode() + b"\n")
    (entry,) = job_index.latest(None)
    (state,) = lifecycle.statuses([entry])
    assert (state.state, state.backend_state) == ("failed", "not submitted")
    assert commands.jobs(argparse.Namespace(all=True, limit=20)) == 0
    header, row = capsys.readouterr().out.splitlines()
    assert header.split()[:2] == ["NAME", "BACKEND"]
    assert row.split()[:4] == ["broken", "slurm", "-", "failed"]


@pytest.mark.parametrize("limit", ["0", "-3", "two"])
def test_jobs_limit_takes_positive_integers_only(limit: str) -> None:
    proc = run_cli("jobs", "--limit", limit)
    assert proc.returncode == 2
    shown = repr(int(limit)) if limit.lstrip("-").isdigit() else repr(limit)
    assert proc.stderr.splitlines()[-1].endswith(f"--limit: expected int >= 1, got {shown}")
    assert proc.stdout == ""


def test_jobs_remembers_the_state_of_ended_launches(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    done, running = tmp_path / "done", tmp_path / "running"
    done.mkdir()
    (done / "local-L1.exit").write_text("0\n")
    job_index.put(JobRecord("done", "local", str(done), "L1", job_id="999999998"))
    job_index.put(JobRecord("running", "local", str(running), "L2", job_id="999999999"))
    assert commands.jobs(argparse.Namespace(all=True, limit=20)) == 0
    first = capsys.readouterr().out
    assert "succeeded (exited)" in first and "failed (gone)" in first
    (done / "local-L1.exit").unlink()  # an ended launch is not asked again
    (running / "local-L2.exit").parent.mkdir()
    (running / "local-L2.exit").write_text("cancelled\n")  # nor is one that was gone
    assert commands.jobs(argparse.Namespace(all=True, limit=20)) == 0
    assert capsys.readouterr().out == first
    # A launch whose record changes (a cancel, a recovered job id) is asked again.
    job_index.put(JobRecord("done", "local", str(done), "L1", job_id="999999998"))
    assert commands.jobs(argparse.Namespace(all=True, limit=20)) == 0
    assert "failed (gone)" in capsys.readouterr().out.splitlines()[1]
