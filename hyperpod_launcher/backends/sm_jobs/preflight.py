"""SageMaker preflight: what IAM, S3, ECR and Service Quotas say about the training job.

Cheap (local): how close the request is to CreateTrainingJob's limits (the launch refuses
one over them, sm_checks.request_limits).
Asking AWS (boto3, imported here only; each call bounded by connect/read timeouts and no
retries): the role exists, trusts sagemaker.amazonaws.com and may be passed; the output
bucket exists in the job's region and takes a zero-byte put and delete under the prefix;
an ECR image exists (DescribeImages); the training-job quota of the instance type, found by
its name through Service Quotas, covers the node count.
"""

from __future__ import annotations

import re
import uuid
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import unquote

from hyperpod_launcher.backends.sm_jobs import checks as sm_checks
from hyperpod_launcher.backends.sm_jobs.options import SmJobsConfig
from hyperpod_launcher.prepare.preflight import Check, Result, fail, ok, warn

if TYPE_CHECKING:
    from hyperpod_launcher.backends.sm_jobs.backend import SageMakerRequest
    from hyperpod_launcher.launch.execute import Plan

ECR_IMAGE = re.compile(
    r"^(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/([^:@]+)(?::([^@]+))?(?:@(.+))?$"
)
# The API reference's prose says 256 characters per hyperparameter value; its model, 2500.
DOCUMENTED_HP_VALUE = 256


def _estimator(plan: Plan) -> dict[str, Any]:
    # These checks run only for cluster=sm_jobs, whose backend renders a SageMakerRequest.
    return cast("SageMakerRequest", plan.request).estimator_arguments()


def _options(plan: Plan) -> SmJobsConfig:
    return plan.spec.opts.sm_jobs_config


def _client(service: str, region: str | None) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(connect_timeout=5, read_timeout=15, retries={"max_attempts": 1})
    return boto3.client(service, region_name=region, config=config)


def _region(plan: Plan) -> str | None:
    import boto3

    return _options(plan).region or boto3.session.Session().region_name


def _error(err: Exception) -> tuple[str, str]:
    response = getattr(err, "response", None) or {}
    code = str((response.get("Error") or {}).get("Code") or type(err).__name__)
    message = str((response.get("Error") or {}).get("Message") or err).splitlines()[0]
    return code, message


def check_limits(plan: Plan) -> Result:
    """A launch refuses a request over CreateTrainingJob's limits (request_limits); this says
    how close it is, and warns of values over the API reference's prose limit."""
    estimator = _estimator(plan)
    environment = estimator.get("environment") or {}
    hyperparameters = estimator.get("hyperparameters") or {}
    long = [k for k, v in hyperparameters.items() if len(str(v)) > DOCUMENTED_HP_VALUE]
    if long:
        return warn(
            f"hyperparameter(s) {', '.join(long)} longer than {DOCUMENTED_HP_VALUE} characters "
            f"(the API's prose limit; its model allows {sm_checks.MAX_HP_VALUE})",
        )
    env, hps = len(environment), len(hyperparameters)
    return ok(
        f"request within CreateTrainingJob limits ({env} of {sm_checks.MAX_ENVIRONMENT} "
        f"environment variables; {hps} hyperparameters and the SDK's "
        f"{sm_checks.SDK_HYPERPARAMETERS} of {sm_checks.MAX_HYPERPARAMETERS})"
    )


def check_role(plan: Plan) -> Result:
    arn = _options(plan).role
    if not arn:
        return warn("no role given: the SDK uses the caller's execution role", "set "
                    "cluster.sm_jobs_config.role to the job's role ARN")  # fmt: skip
    name = arn.rsplit("/", 1)[-1]
    iam = _client("iam", _region(plan))
    try:
        role = iam.get_role(RoleName=name)["Role"]
    except Exception as err:
        code, message = _error(err)
        if code == "NoSuchEntity":
            return fail(
                f"role {arn} does not exist", "create it, or fix cluster.sm_jobs_config.role"
            )
        return warn(f"cannot read role {arn}: {code}: {message}", "allow iam:GetRole, or check "
                    "the role by hand")  # fmt: skip
    trust = role.get("AssumeRolePolicyDocument") or {}
    if isinstance(trust, str):
        trust = unquote(trust)
    if "sagemaker.amazonaws.com" not in str(trust):
        return fail(
            f"role {arn} does not trust sagemaker.amazonaws.com: SageMaker cannot assume it",
            "add sagemaker.amazonaws.com as a principal of its trust policy",
        )
    try:
        caller = _client("sts", _region(plan)).get_caller_identity()["Arn"]
        answer = iam.simulate_principal_policy(
            PolicySourceArn=caller, ActionNames=["iam:PassRole"], ResourceArns=[arn]
        )
        decision = answer["EvaluationResults"][0]["EvalDecision"]
    except Exception as err:
        code, _ = _error(err)
        return ok(f"role {arn} exists and trusts SageMaker (PassRole not simulated: {code})")
    if decision != "allowed":
        return fail(f"you may not pass role {arn} ({decision})", "ask for iam:PassRole on it")
    return ok(f"role {arn} exists, trusts SageMaker, and you may pass it")


def check_bucket(plan: Plan) -> Result:
    output = str(_estimator(plan)["output_path"])
    bucket, _, prefix = output.removeprefix("s3://").partition("/")
    region = _region(plan)
    s3 = _client("s3", region)
    try:
        head = s3.head_bucket(Bucket=bucket)
    except Exception as err:
        code, message = _error(err)
        if code in ("404", "NoSuchBucket", "NotFound"):
            return fail(f"bucket {bucket} does not exist", "create it, or fix the output_path")
        return fail(f"bucket {bucket}: {code} {message}", "check the bucket policy and your "
                    "s3:ListBucket right")  # fmt: skip
    headers = (head.get("ResponseMetadata") or {}).get("HTTPHeaders") or {}
    where = head.get("BucketRegion") or headers.get("x-amz-bucket-region")
    if region and where and where != region:
        return fail(
            f"bucket {bucket} is in {where}, the job runs in {region}",
            "use a bucket in the job's region (SageMaker writes the output from there)",
        )
    key = f"{prefix.rstrip('/') + '/' if prefix else ''}.hpl-preflight-{uuid.uuid4().hex[:8]}"
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=b"")
        s3.delete_object(Bucket=bucket, Key=key)
    except Exception as err:
        code, message = _error(err)
        return fail(f"cannot write to s3://{bucket}/{key}: {code} {message}",
                    "allow s3:PutObject and s3:DeleteObject under the output prefix")  # fmt: skip
    return ok(f"bucket {bucket} ({where or region}) takes a put and delete under {output}")


def check_image(plan: Plan) -> Result:
    image = plan.spec.image
    if not image:
        return ok("no image given: the SDK picks the framework image")
    found = ECR_IMAGE.match(image)
    if not found:
        return ok(f"{image} is not in ECR: not checked")
    registry, region, repository, tag, digest = found.groups()
    ecr = _client("ecr", region)
    wanted = {"imageDigest": digest} if digest else {"imageTag": tag or "latest"}
    try:
        ecr.describe_images(registryId=registry, repositoryName=repository, imageIds=[wanted])
    except Exception as err:
        code, message = _error(err)
        if code in ("ImageNotFoundException", "RepositoryNotFoundException"):
            return fail(f"{image}: {message}", "push the image, or fix `container`")
        return warn(f"cannot describe {image}: {code} {message}", "allow ecr:DescribeImages")
    return ok(f"{image} exists in ECR")


def check_quota(plan: Plan) -> Result:
    instance_type = str(_estimator(plan)["instance_type"])
    nodes = plan.spec.nodes
    name = f"{instance_type} for training job usage"
    client = _client("service-quotas", _region(plan))
    try:
        pages = client.get_paginator("list_service_quotas").paginate(ServiceCode="sagemaker")
        quotas = [q for page in pages for q in page["Quotas"]]
    except Exception as err:
        code, message = _error(err)
        fix = "allow servicequotas:ListServiceQuotas, or check the quota by hand"
        return warn(f"cannot list SageMaker quotas: {code} {message}", fix)
    quota = next((q for q in quotas if q["QuotaName"] == name), None)
    if quota is None:
        return warn(f"no quota named {name!r}", "check the instance type's training quota")
    value = int(quota.get("Value") or 0)
    if value < nodes:
        return fail(
            f"quota {name!r} is {value}, the job needs {nodes} instances",
            f"request an increase of quota {quota.get('QuotaCode')} in Service Quotas",
        )
    return ok(f"quota {name!r} is {value} (the job needs {nodes})")


def checks(plan: Plan) -> list[Check]:
    return [
        Check("sagemaker request", lambda: check_limits(plan), cheap=True),
        Check("sagemaker role", lambda: check_role(plan)),
        Check("sagemaker bucket", lambda: check_bucket(plan)),
        Check("sagemaker image", lambda: check_image(plan)),
        Check("sagemaker quota", lambda: check_quota(plan)),
    ]
