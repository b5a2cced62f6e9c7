"""Follow a SageMaker training job: status (DescribeTrainingJob), logs (CloudWatch), cancel.

Status and logs run against the moto server. moto 5.2 has no StopTrainingJob and finishes
every job at once, so cancel is checked against a small recording stand-in that answers
DescribeTrainingJob with a running job and records the StopTrainingJob request it receives.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from conftest import sm

from tests.conftest import run_cli, run_launcher


def launch(moto: Any, tmp_path: Path) -> dict[str, Any]:
    proc = run_launcher(
        *sm(
            "instance_type=ml.g5.12xlarge",
            "training_cfg.run.ntasks_per_node=null",
            tmp_path=tmp_path,
        ),
        env={**moto.env, "HPL_STATE_DIR": str(tmp_path / "state")},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (record,) = tmp_path.glob("*/job.json")
    return json.loads(record.read_text())


def test_status_and_logs_of_a_training_job(moto: Any, tmp_path: Path) -> None:
    record = launch(moto, tmp_path)
    env = {**moto.env, "HPL_STATE_DIR": str(tmp_path / "state")}
    name = record["details"]["training_job_name"]
    status = json.loads(run_cli("status", record["name"], "--json", env=env).stdout)
    assert (status["state"], status["backend_state"]) == ("succeeded", "Completed")

    logs = moto.client("logs")
    now = int(time.time() * 1000)
    stream = f"{name}/algo-1-1700000000"
    logs.create_log_group(logGroupName="/aws/sagemaker/TrainingJobs")
    logs.create_log_stream(logGroupName="/aws/sagemaker/TrainingJobs", logStreamName=stream)
    logs.put_log_events(
        logGroupName="/aws/sagemaker/TrainingJobs",
        logStreamName=stream,
        logEvents=[{"timestamp": now + i, "message": f"[rank{i % 2}]:step {i}"} for i in range(4)],
    )
    everything = run_cli("logs", name, env=env)
    assert everything.returncode == 0, everything.stderr
    assert everything.stdout.splitlines() == [f"[rank{i % 2}]:step {i}" for i in range(4)]
    one = run_cli("logs", name, "--rank", "1", "--follow", env=env)
    assert one.stdout.splitlines() == ["[rank1]:step 1", "[rank1]:step 3"]

    done = run_cli("cancel", name, env=env)
    assert done.returncode == 0 and "already finished" in done.stdout


class _RecordingSageMaker(BaseHTTPRequestHandler):
    """Answers DescribeTrainingJob with a running job; records every request."""

    requests: ClassVar[list[tuple[str, dict[str, Any]]]] = []

    def do_POST(self) -> None:
        target = self.headers.get("X-Amz-Target", "")
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
        type(self).requests.append((target, body))
        reply: dict[str, Any] = {}
        if target.endswith("DescribeTrainingJob"):
            reply = {
                "TrainingJobName": body["TrainingJobName"],
                "TrainingJobStatus": "InProgress",
                "SecondaryStatus": "Training",
            }
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-amz-json-1.1")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def recording_sagemaker() -> Iterator[str]:
    _RecordingSageMaker.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _RecordingSageMaker)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_cancel_stops_a_running_training_job(
    moto: Any, tmp_path: Path, recording_sagemaker: str
) -> None:
    record = launch(moto, tmp_path)
    env = {
        **moto.env,
        "HPL_STATE_DIR": str(tmp_path / "state"),
        "AWS_ENDPOINT_URL": recording_sagemaker,
    }
    name = record["details"]["training_job_name"]
    status = json.loads(run_cli("status", name, "--json", env=env).stdout)
    assert (status["state"], status["backend_state"]) == ("running", "InProgress/Training")
    proc = run_cli("cancel", name, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"stopping training job {name}"
    stops = [
        body for target, body in _RecordingSageMaker.requests if target.endswith("StopTrainingJob")
    ]
    assert stops == [{"TrainingJobName": name}]


@pytest.mark.parametrize(
    "broken",
    [
        {"AWS_ENDPOINT_URL": "http://127.0.0.1:9"},  # nothing listens there
        {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_PROFILE": "nowhere"},
    ],
    ids=["unreachable", "no-credentials"],
)
def test_unreachable_aws_or_missing_credentials_is_one_line(
    moto: Any, tmp_path: Path, broken: dict[str, str]
) -> None:
    record = launch(moto, tmp_path)
    env = {**moto.env, "HPL_STATE_DIR": str(tmp_path / "state"), **broken}
    proc = run_cli("status", record["name"], env=env)
    assert proc.returncode == 1
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert proc.stderr.startswith("error: ")
