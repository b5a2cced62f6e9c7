"""A local AWS stand-in for the SageMaker suite: one moto server per session on 127.0.0.1.

The server is started and stopped by PID, seeded with an output bucket and a role. The SDK's
git clone of the training adapter is redirected (git `insteadOf`) to a fixture repository
built here; telemetry is off; fake credentials; no traffic leaves the machine.
"""

from __future__ import annotations

import base64
import importlib.util
import io
import json
import os
import signal
import socket
import subprocess
import sys
import tarfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require

REGION = "us-west-2"
BUCKET = "hpl-sm-test"
ROLE_ARN = "arn:aws:iam::123456789012:role/hpl-sagemaker"
# Where the SDK clones the adapter from, and where the launcher's config points by default.
# (The fixture repository stands in for the Neuron library too: Trainium recipes clone it.)
ADAPTER_URLS = (
    "https://github.com/aws/sagemaker-training-adapter-for-nemo.git",
    "https://github.com/aws/sagemaker-hyperpod-training-adapter-for-nemo.git",
    "https://github.com/aws-neuron/neuronx-distributed-training.git",
)
FAMILIES = {
    "llama": "llama_pretrain.py",
    "mistral": "mistral_pretrain.py",
    "mixtral": "mixtral_pretrain.py",
    "custom_model": "custom_pretrain.py",
}


def sm(*overrides: str, tmp_path: Path) -> tuple[str, ...]:
    """Overrides for a launch on cluster=sm_jobs against the stand-in's bucket and role. The
    fixture stands in for the adapter at its branch, not at the commit the recipes pin."""
    return (
        "cluster=sm_jobs",
        "git.branch=main",
        f"base_results_dir={tmp_path}",
        f"cluster.sm_jobs_config.output_path=s3://{BUCKET}/jobs",
        f"cluster.sm_jobs_config.role={ROLE_ARN}",
        *overrides,
    )


def submit(moto: Any, *argv: str) -> tuple[dict[str, Any], subprocess.CompletedProcess[str]]:
    """Launch through the CLI against the stand-in; return the one CreateTrainingJob it got."""
    from tests.conftest import run_launcher

    moto.start_recording()
    proc = run_launcher(*argv, env=moto.env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (create,) = moto.calls("CreateTrainingJob")
    return create, proc


def hyperparameters(create: dict[str, Any]) -> dict[str, Any]:
    """A CreateTrainingJob's HyperParameters, decoded from the SDK's JSON strings."""
    return {key: json.loads(value) for key, value in create["HyperParameters"].items()}


def archive(moto: Any, create: dict[str, Any]) -> dict[str, bytes]:
    """The files of the source archive a CreateTrainingJob names, read back from the bucket."""
    submit_dir = json.loads(create["HyperParameters"]["sagemaker_submit_directory"])
    bucket, key = submit_dir.removeprefix("s3://").split("/", 1)
    body = moto.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _git(*args: str, cwd: Path) -> str:
    git = [
        "git",
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@example.com",
        "-c",
        "init.defaultBranch=main",
    ]
    proc = subprocess.run([*git, *args], cwd=cwd, check=True, capture_output=True, text=True)
    return proc.stdout.strip()


@dataclass
class Adapter:
    """The fixture training adapter: two commits, so a test can tell which one was shipped."""

    path: Path
    first: str
    second: str


def _adapter(root: Path) -> Adapter:
    root.mkdir(parents=True)
    _git("init", "-q", ".", cwd=root)
    for family, script in FAMILIES.items():
        (root / "examples" / family).mkdir(parents=True)
        (root / "examples" / family / script).write_text(f"print('{family} v1')\n")
    (root / "examples" / "training_orchestrator.py").write_text("print('neuron v1')\n")
    package = root / "src" / "neuronx_distributed_training"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("VERSION = 'v1'\n")
    _git("add", ".", cwd=root)
    _git("commit", "-qm", "v1", cwd=root)
    first = _git("rev-parse", "HEAD", cwd=root)
    (root / "examples" / "llama" / "llama_pretrain.py").write_text("print('llama v2')\n")
    (root / "examples" / "training_orchestrator.py").write_text("print('neuron v2')\n")
    (package / "__init__.py").write_text("VERSION = 'v2'\n")
    _git("commit", "-qam", "v2", cwd=root)
    return Adapter(root, first, _git("rev-parse", "HEAD", cwd=root))


@dataclass
class Moto:
    endpoint: str
    env: dict[str, str]
    adapter: Adapter
    pid: int
    clients: dict[str, Any] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        import boto3

        if service not in self.clients:
            self.clients[service] = boto3.client(
                service,
                endpoint_url=self.endpoint,
                region_name=REGION,
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
            )
        return self.clients[service]

    def _post(self, path: str) -> None:
        req = urllib.request.Request(self.endpoint + path, method="POST", data=b"")
        urllib.request.urlopen(req, timeout=10).read()

    def start_recording(self) -> None:
        self._post("/moto-api/recorder/reset-recording")
        self._post("/moto-api/recorder/start-recording")

    def recording(self) -> list[dict[str, Any]]:
        """Every request the server received since start_recording, bodies decoded."""
        url = self.endpoint + "/moto-api/recorder/download-recording"
        raw = urllib.request.urlopen(url, timeout=10).read().decode()
        self._post("/moto-api/recorder/stop-recording")
        records = []
        for line in raw.splitlines():
            if not line.strip():
                continue
            record = json.loads(line)
            body = record.get("body") or ""
            if record.get("body_encoded"):
                body = base64.b64decode(body)
            record["body"] = body
            records.append(record)
        return records

    def calls(self, operation: str) -> list[dict[str, Any]]:
        """The JSON bodies of recorded SageMaker calls of one operation."""
        target = f"SageMaker.{operation}"
        return [
            json.loads(r["body"])
            for r in self.recording()
            if r["headers"].get("X-Amz-Target") == target
        ]


@pytest.fixture(scope="session")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Moto]:
    missing = [m for m in ("boto3", "moto", "sagemaker") if importlib.util.find_spec(m) is None]
    require(not missing, f"{', '.join(missing)} (the SageMaker suite's stand-in and SDK)")
    root = tmp_path_factory.mktemp("sm")
    adapter = _adapter(root / "adapter")
    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    log = open(root / "moto.log", "wb")  # noqa: SIM115 (kept open while the server runs)
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        cwd=root,  # the recorder writes its file into the working directory
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(endpoint + "/moto-api/", timeout=1).read()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"moto server did not start: {(root / 'moto.log').read_text()}"
                    ) from None
                time.sleep(0.1)
        sdk_config = root / "sagemaker-config.yaml"
        sdk_config.write_text(
            "SchemaVersion: '1.0'\n"
            "SageMaker:\n"
            "  PythonSDK:\n"
            "    Modules:\n"
            "      TelemetryOptOut: true\n"
            "      Session:\n"
            f"        DefaultS3Bucket: {BUCKET}\n"
        )
        env = {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": str(root / "no-aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(root / "no-aws-credentials"),
            "SAGEMAKER_USER_CONFIG_OVERRIDE": str(sdk_config),
            "NO_PROXY": "127.0.0.1,localhost",
            "GIT_CONFIG_COUNT": str(len(ADAPTER_URLS)),
            **{f"GIT_CONFIG_KEY_{i}": f"url.{adapter.path}.insteadOf" for i in range(3)},
            **{f"GIT_CONFIG_VALUE_{i}": url for i, url in enumerate(ADAPTER_URLS)},
        }
        stand_in = Moto(endpoint, env, adapter, server.pid)
        stand_in.client("s3").create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}
        )
        stand_in.client("iam").create_role(
            RoleName=ROLE_ARN.rsplit("/", 1)[1], AssumeRolePolicyDocument="{}"
        )
        yield stand_in
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()
