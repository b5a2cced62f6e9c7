"""A backend is one registry entry: a toy backend defined in this test module runs a dry run, a
launch, `jobs` and `status` through the launcher's own code, with nothing edited in the package."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from hyperpod_launcher import backends
from hyperpod_launcher.backends.base import Backend, RenderedFile, Request, Submitted
from hyperpod_launcher.cli import main as cli
from hyperpod_launcher.jobs import status as st
from hyperpod_launcher.jobs.records import JobRecord
from hyperpod_launcher.spec.job import JobSpec, LaunchOptions, Secrets
from hyperpod_launcher.util.errors import UserError


@dataclass
class ToyOptions:
    """cluster/toy.yaml"""

    greeting: str = "hello"


class ToyBackend(Backend):
    def validate(self, spec: JobSpec) -> None:
        if not spec.opts.greeting.isalpha():
            raise UserError(f"cluster.greeting={spec.opts.greeting!r}: expected letters only")

    def render(self, spec: JobSpec, launch: LaunchOptions) -> Request:
        assert spec.opts.greeting.isalpha()  # validate ran first
        script = f"#!/bin/sh\necho {spec.opts.greeting}\n"
        files = {"toy.sh": RenderedFile(script, 0o755)}
        return Request(files, ("toy-run", spec.job_dir), "toy job")

    def submit(self, request: Request, secrets: Secrets) -> Submitted:
        (job_dir,) = request.submit_argv[1:]  # submit has the request only
        Path(job_dir, "toy.state").write_text("RUNNING")
        return Submitted(job_id=f"toy-{Path(job_dir).name}")

    def status(self, records: list[JobRecord], detailed: bool = False) -> list[st.JobStatus]:
        words = [Path(r.job_dir, "toy.state").read_text() for r in records]
        return [st.JobStatus(st.RUNNING if w == "RUNNING" else st.UNKNOWN, w) for w in words]


@pytest.fixture
def toy_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(backends, "_REGISTRY", dict(backends._REGISTRY))
    backends.register("toy", backends.Entry(f"{__name__}:ToyBackend", f"{__name__}:ToyOptions"))
    config_dir = tmp_path / "conf"
    (config_dir / "cluster").mkdir(parents=True)
    (config_dir / "cluster" / "toy.yaml").write_text("greeting: hello\n")
    return config_dir


def launch(config_dir: Path, tmp_path: Path, *extra: str) -> int:
    return cli.main(
        [
            "--config-dir",
            str(config_dir),
            "cluster=toy",
            f"base_results_dir={tmp_path / 'results'}",
            "training_cfg.run.name=toy-job",
            *extra,
        ]
    )


def test_a_registered_backend_dry_runs_launches_and_is_followed(
    toy_config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert "toy" in backends.names()
    assert backends.get("toy").capabilities == {"status"}  # what it implements, nothing else
    job_dir = tmp_path / "results" / "toy-job"

    assert launch(toy_config, tmp_path, "dry_run=true", "cluster.greeting=hi") == 0
    out = capsys.readouterr().out
    assert f"submit with: toy-run {job_dir}" in out
    assert (job_dir / "toy.sh").read_text() == "#!/bin/sh\necho hi\n"
    assert json.loads((job_dir / "job.json").read_text())["backend"] == "toy"

    # The options schema the entry names checks the cluster file's keys.
    assert launch(toy_config, tmp_path, "dry_run=true", "+cluster.greting=hi") == 2
    assert "unknown key 'cluster.greting' (did you mean 'greeting'?)" in capsys.readouterr().err

    assert launch(toy_config, tmp_path) == 0
    assert "submitted toy job toy-" in capsys.readouterr().out
    assert cli.main(["jobs"]) == 0
    assert "toy-job  toy" in capsys.readouterr().out
    assert cli.main(["status", "toy-job"]) == 0
    assert ": running (RUNNING)" in capsys.readouterr().out
    # What the backend does not declare is refused in one line.
    assert cli.main(["logs", "toy-job"]) == 2
    assert capsys.readouterr().err == "error: `logs` is not supported for toy jobs\n"


def test_validate_runs_before_render_and_refuses_in_one_line(
    toy_config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert launch(toy_config, tmp_path, "dry_run=true", "cluster.greeting='hi there'") == 2
    err = capsys.readouterr().err
    assert err == "error: cluster.greeting='hi there': expected letters only\n"
    assert not (tmp_path / "results").exists()


def test_every_backend_declares_what_it_answers() -> None:
    for name in backends.names():
        backend = backends.get(name)
        assert isinstance(backend, Backend)
        assert backend.capabilities <= {"status", "logs", "cancel"}, name
        assert isinstance(backends.options_schema(name), type)
