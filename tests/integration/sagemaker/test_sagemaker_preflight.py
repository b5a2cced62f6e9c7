"""`hyperpod-launch preflight` for SageMaker training jobs: IAM, S3 and ECR against the moto
server, Service Quotas (ListServiceQuotas, which moto lacks) against a recording stand-in."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from conftest import BUCKET, REGION, Moto

from tests.conftest import REPO

TRUSTED_ROLE = "hpl-preflight-trusted"
TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"},
                   "Action": "sts:AssumeRole"}],
}  # fmt: skip
ACCOUNT = "123456789012"
REPOSITORY = "train"


class Quotas:
    """Service Quotas stand-in: answers ListServiceQuotas with `quotas`, records requests."""

    def __init__(self) -> None:
        self.quotas: list[dict[str, Any]] = []
        self.requests: list[dict[str, Any]] = []
        self.url = ""


@pytest.fixture
def quotas() -> Iterator[Quotas]:
    state = Quotas()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
            state.requests.append({"target": self.headers.get("X-Amz-Target"), "body": body})
            data = json.dumps({"Quotas": state.quotas}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-amz-json-1.1")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(scope="module")
def aws(moto: Moto) -> Moto:
    iam = moto.client("iam")
    if TRUSTED_ROLE not in [r["RoleName"] for r in iam.list_roles()["Roles"]]:
        iam.create_role(RoleName=TRUSTED_ROLE, AssumeRolePolicyDocument=json.dumps(TRUST))
    ecr = moto.client("ecr")
    if not ecr.describe_repositories()["repositories"]:
        ecr.create_repository(repositoryName=REPOSITORY)
        media = "application/vnd.docker.distribution.manifest.v2+json"
        manifest = json.dumps({"schemaVersion": 2, "mediaType": media, "config": {}, "layers": []})
        ecr.put_image(repositoryName=REPOSITORY, imageManifest=manifest, imageTag="1.0",
                      imageManifestMediaType=media)  # fmt: skip
    return moto


def preflight(aws: Moto, quotas: Quotas, tmp_path: Path, *overrides: str, nodes: int = 2):
    env = {
        **os.environ,
        **aws.env,
        "AWS_ENDPOINT_URL_SERVICE_QUOTAS": quotas.url,
        "HPL_STATE_DIR": str(tmp_path / "state"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
    }
    image = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{REPOSITORY}:1.0"
    return subprocess.run(
        [sys.executable, "-m", "hyperpod_launcher", "preflight", "cluster=sm_jobs",
         f"base_results_dir={tmp_path / 'results'}", "instance_type=ml.p5.48xlarge",
         f"training_cfg.run.nodes={nodes}", f"container={image}",
         f"cluster.sm_jobs_config.output_path=s3://{BUCKET}/jobs",
         f"cluster.sm_jobs_config.role=arn:aws:iam::{ACCOUNT}:role/{TRUSTED_ROLE}",
         f"cluster.sm_jobs_config.region={REGION}", *overrides],
        capture_output=True, text=True, cwd=REPO, env=env, check=False, timeout=300,
    )  # fmt: skip


def lines(proc: subprocess.CompletedProcess[str]) -> dict[str, str]:
    found = {}
    for line in proc.stdout.splitlines():
        status, _, rest = line.partition(" ")
        name, _, message = rest.strip().partition(": ")
        found[name] = f"{status} {message}"
    return found


P5 = "ml.p5.48xlarge for training job usage"


def test_a_ready_account_passes(aws: Moto, quotas: Quotas, tmp_path: Path) -> None:
    quotas.quotas = [{"QuotaName": P5, "QuotaCode": "L-TEST", "Value": 4.0}]
    proc = preflight(aws, quotas, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    got = lines(proc)
    assert set(got) == {"sagemaker request", "sagemaker role", "sagemaker bucket",
                        "sagemaker image", "sagemaker quota"}  # fmt: skip
    assert all(v.startswith("ok ") for v in got.values()), proc.stdout
    assert got["sagemaker quota"] == f"ok quota '{P5}' is 4 (the job needs 2)"
    assert got["sagemaker bucket"].startswith(f"ok bucket {BUCKET} ({REGION}) takes a put")
    assert quotas.requests == [
        {"target": "ServiceQuotasV20190624.ListServiceQuotas", "body": {"ServiceCode": "sagemaker"}}
    ]
    left = aws.client("s3").list_objects_v2(Bucket=BUCKET, Prefix="jobs/.hpl-preflight-")
    assert left.get("KeyCount", 0) == 0  # the probe object was deleted
    assert not (tmp_path / "results").exists()


def test_what_is_missing_fails_with_its_fix(aws: Moto, quotas: Quotas, tmp_path: Path) -> None:
    quotas.quotas = [{"QuotaName": P5, "QuotaCode": "L-TEST", "Value": 1.0}]
    image = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{REPOSITORY}:9.9"
    proc = preflight(
        aws, quotas, tmp_path,
        f"cluster.sm_jobs_config.role=arn:aws:iam::{ACCOUNT}:role/nobody",
        "cluster.sm_jobs_config.output_path=s3://hpl-no-such-bucket/jobs",
        f"container={image}",
    )  # fmt: skip
    assert proc.returncode == 1
    got = lines(proc)
    assert got["sagemaker role"].startswith(
        f"fail role arn:aws:iam::{ACCOUNT}:role/nobody does not exist"
    )
    assert got["sagemaker bucket"].startswith("fail bucket hpl-no-such-bucket does not exist")
    assert got["sagemaker image"].startswith(f"fail {image}:")
    assert got["sagemaker quota"] == (
        f"fail quota '{P5}' is 1, the job needs 2 instances; fix: request an increase of quota "
        "L-TEST in Service Quotas"
    )


def test_a_role_that_does_not_trust_sagemaker_fails(
    aws: Moto, quotas: Quotas, tmp_path: Path
) -> None:
    quotas.quotas = [{"QuotaName": P5, "QuotaCode": "L-TEST", "Value": 4.0}]
    proc = preflight(aws, quotas, tmp_path, "cluster.sm_jobs_config.role="
                     f"arn:aws:iam::{ACCOUNT}:role/hpl-sagemaker")  # fmt: skip
    assert "does not trust sagemaker.amazonaws.com" in lines(proc)["sagemaker role"]
    assert proc.returncode == 1


def test_a_bucket_in_another_region_fails(aws: Moto, quotas: Quotas, tmp_path: Path) -> None:
    quotas.quotas = [{"QuotaName": P5, "QuotaCode": "L-TEST", "Value": 4.0}]
    import boto3

    s3 = boto3.client("s3", endpoint_url=aws.endpoint, region_name="eu-west-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip
    s3.create_bucket(Bucket="hpl-eu-bucket",
                     CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})  # fmt: skip
    proc = preflight(aws, quotas, tmp_path,
                     "cluster.sm_jobs_config.output_path=s3://hpl-eu-bucket/jobs")  # fmt: skip
    assert lines(proc)["sagemaker bucket"].startswith(
        f"fail bucket hpl-eu-bucket is in eu-west-1, the job runs in {REGION}"
    )
