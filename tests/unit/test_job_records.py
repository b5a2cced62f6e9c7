"""Job records are typed: job.json and the index round-trip through JobRecord, and lines and
records written by earlier versions still load."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from hyperpod_launcher import commands, lifecycle, records
from hyperpod_launcher.jobdir import JobDir
from hyperpod_launcher.records import JobRecord

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


def test_an_index_line_of_an_earlier_version_loads(tmp_path: Path) -> None:
    records.index_path().parent.mkdir(parents=True, exist_ok=True)
    records.index_path().write_text(OLD_LINE + "\nnot json\n" + '{"name": "no-backend"}\n')
    (entry,) = records.index_entries()
    assert entry == JobRecord(
        name="llama-8b",
        backend="slurm",
        job_dir="/results/llama-8b",
        launch_id="20261120-101010-ab12",
        job_id="4711",
        submitted_at="2026-11-20T10:10:10+00:00",
    )
    assert not entry.complete  # the details live in job.json


def test_appended_lines_keep_the_index_format(tmp_path: Path) -> None:
    record = JobRecord.from_dict(OLD_JOB_JSON)
    records.append_to_index(record)
    (line,) = records.index_path().read_text().splitlines()
    assert json.loads(line) == {key: OLD_JOB_JSON[key] for key in records.INDEX_KEYS}
    (entry,) = records.index_entries()
    assert records.full(entry) == entry  # no job folder: the line is all there is


def test_job_json_of_an_earlier_version_round_trips(tmp_path: Path) -> None:
    record = JobRecord.from_dict(OLD_JOB_JSON)
    assert record.complete and record.submit_status == "submitted"
    assert record.details["release"] == "llama-8b" and record.overrides == ("cluster=k8s",)
    assert record.to_dict() == OLD_JOB_JSON

    folder = tmp_path / "llama-8b"
    JobDir(folder, str(record.launch_id)).write_record(record)
    assert json.loads((folder / "job.json").read_text()) == OLD_JOB_JSON
    assert records.read_record(folder) == record
    index_line = JobRecord.from_dict({**OLD_JOB_JSON, "job_dir": str(folder)}).index_line()
    assert records.full(JobRecord.from_dict(index_line)).details == OLD_JOB_JSON["details"]


def test_jobs_lists_lines_of_an_earlier_version(capsys: pytest.CaptureFixture[str]) -> None:
    never_submitted = json.dumps({**json.loads(OLD_LINE), "name": "broken", "job_id": None})
    records.index_path().parent.mkdir(parents=True, exist_ok=True)
    records.index_path().write_text(never_submitted + "\n")
    (entry,) = records.index_entries()
    (state,) = lifecycle.statuses([entry])
    assert (state.state, state.backend_state) == ("failed", "not submitted")
    assert commands.jobs(argparse.Namespace(all=True, limit=20)) == 0
    header, row = capsys.readouterr().out.splitlines()
    assert header.split()[:2] == ["NAME", "BACKEND"]
    assert row.split()[:4] == ["broken", "slurm", "-", "failed"]
