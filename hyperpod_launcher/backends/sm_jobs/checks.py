"""SageMaker's rules, checked before anything is written (pure: the SDK is not imported).

`ESTIMATOR_KWARGS` is the table of `sagemaker.pytorch.PyTorch` arguments (SDK 2.236 - 2.257)
that `additional_estimator_kwargs` may carry, with the kind of value each one takes;
tests/unit/test_sagemaker_render.py compares it with the installed SDK's signature.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

from hyperpod_launcher.backends.sm_jobs.options import SmFileSystemInput
from hyperpod_launcher.config.rules import Count
from hyperpod_launcher.config.time_limit import time_limit_seconds
from hyperpod_launcher.config.validate import problem, type_name
from hyperpod_launcher.util.errors import UserError, did_you_mean

KEY = "cluster.sm_jobs_config"
AEK = f"{KEY}.additional_estimator_kwargs"


# kind -> (check, what the user is told is allowed)
def _string_records(value: Any, keys: set[str]) -> bool:
    """A list of mappings with exactly these keys, every value a string (tags, metrics)."""
    return isinstance(value, list) and all(
        isinstance(i, dict) and set(i) == keys and all(isinstance(x, str) for x in i.values())
        for i in value
    )


_KINDS: dict[str, tuple[Any, str]] = {
    "int": (lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer"),
    "pos_int": (lambda v: problem(v, Count) is None, type_name(Count)),
    "str": (lambda v: isinstance(v, str) and v != "", "a non-empty string"),
    "s3": (lambda v: isinstance(v, str) and v.startswith("s3://") and len(v) > 5, "an s3:// URI"),
    "bool": (lambda v: isinstance(v, bool), "true or false"),
    "str_list": (
        lambda v: isinstance(v, list) and all(isinstance(i, str) and i for i in v),
        "a list of strings",
    ),
    "tags": (
        lambda v: (
            (isinstance(v, dict) and all(isinstance(x, str) for x in v.values()))
            or _string_records(v, {"Key", "Value"})
        ),
        "a list of {Key: ..., Value: ...} or a mapping of strings",
    ),
    "metrics": (
        lambda v: _string_records(v, {"Name", "Regex"}),
        "a list of {Name: ..., Regex: ...}",
    ),
    "mapping": (lambda v: isinstance(v, dict), "a mapping"),
}

ESTIMATOR_KWARGS: dict[str, str] = {
    "keep_alive_period_in_seconds": "int",
    "volume_size": "pos_int",
    "volume_kms_key": "str",
    "max_run": "pos_int",
    "input_mode": "str",
    "output_kms_key": "str",
    "tags": "tags",
    "subnets": "str_list",
    "security_group_ids": "str_list",
    "model_uri": "str",
    "model_channel_name": "str",
    "metric_definitions": "metrics",
    "encrypt_inter_container_traffic": "bool",
    "use_spot_instances": "bool",
    "max_wait": "pos_int",
    "checkpoint_s3_uri": "s3",
    "checkpoint_local_path": "str",
    "debugger_hook_config": "bool",
    "enable_sagemaker_metrics": "bool",
    "enable_network_isolation": "bool",
    "disable_profiler": "bool",
    "container_log_level": "int",
    "code_location": "s3",
    "dependencies": "str_list",
    "training_repository_access_mode": "str",
    "training_repository_credentials_provider_arn": "str",
    "enable_infra_check": "bool",
    "container_entry_point": "str_list",
    "container_arguments": "str_list",
    "disable_output_compression": "bool",
    "enable_remote_debug": "bool",
    "enable_session_tag_chaining": "bool",
    "training_plan": "str",
    "instance_placement_config": "mapping",
    "framework_version": "str",
    "py_version": "str",
}

# Arguments the launcher sets itself, and where the user sets them instead.
OWNED_KWARGS: dict[str, str] = {
    "role": f"{KEY}.role",
    "instance_type": "the top-level instance_type",
    "instance_count": "recipes.trainer.num_nodes (or training_cfg.run.nodes)",
    "output_path": f"{KEY}.output_path",
    "base_job_name": "recipes.run.name (or training_cfg.run.name)",
    "environment": "env_vars (secrets: cluster.sm_jobs_config.secrets)",
    "image_uri": "the top-level container",
    "source_dir": "nothing: the launcher ships a dedicated folder of the job folder",
    "entry_point": "training_cfg.entry_script or git.entry_script",
    "git_config": "git.repo_url_or_path, git.branch and git.commit",
    "hyperparameters": "training_cfg.script_args (recipes: the recipe itself)",
    "distribution": "nothing: the launcher picks it from the instance and recipe",
    "training_recipe": "recipes=<recipe>",
    "recipe_overrides": f"{KEY}.recipe_overrides",
    "tensorboard_output_config": f"{KEY}.tensorboard_config",
    "sagemaker_session": f"{KEY}.region",
    "max_retry_attempts": "the top-level max_restarts",
}

# SDK arguments that take Python objects, which a YAML value cannot express.
OBJECT_KWARGS = ("rules", "profiler_config", "instance_groups", "compiler_config")

JOB_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
ROLE_ARN = re.compile(r"^arn:aws[a-z0-9-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")
SECRET_REF = re.compile(
    r"^(arn:aws[a-z0-9-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:)?[\w/+=.@-]+$"
)
FILE_SYSTEM_ID = re.compile(r"^fs-[0-9a-f]{8,40}$")


def _plain(value: Any) -> bool:
    """YAML-born data a Python literal can hold exactly."""
    if value is None or isinstance(value, (bool, int, str)):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return False


def estimator_kwargs(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """Validate additional_estimator_kwargs against the table; return them without nulls."""
    result: dict[str, Any] = {}
    for name, value in kwargs.items():
        key = f"{AEK}.{name}"
        if name in OWNED_KWARGS:
            raise UserError(f"{key}: set by the launcher; set {OWNED_KWARGS[name]} instead")
        if name in OBJECT_KWARGS:
            raise UserError(
                f"{key}: the SDK takes a Python object here, which a config value cannot be"
            )
        if name not in ESTIMATOR_KWARGS:
            raise UserError(
                f"{key}: not an argument of the SageMaker PyTorch estimator"
                f"{did_you_mean(name, ESTIMATOR_KWARGS)}"
            )
        if value is None:
            continue
        check, allowed = _KINDS[ESTIMATOR_KWARGS[name]]
        if not _plain(value) or not check(value):
            raise UserError(f"{key}={value!r}: the SDK takes {allowed} here")
        result[name] = value
    if result.get("use_spot_instances") and "max_wait" not in result:
        raise UserError(f"{AEK}.use_spot_instances=true needs {AEK}.max_wait (seconds, >= max_run)")
    if "max_wait" in result:
        if not result.get("use_spot_instances"):
            raise UserError(f"{AEK}.max_wait is only used with {AEK}.use_spot_instances=true")
        if result["max_wait"] < result.get("max_run", 86400):
            raise UserError(
                f"{AEK}.max_wait={result['max_wait']} must be >= max_run "
                f"({result.get('max_run', 86400)} s)"
            )
    return result


def s3_uri(value: Any, key: str) -> str:
    if not isinstance(value, str) or not value.startswith("s3://") or len(value) <= 5:
        raise UserError(f"{key}={value!r}: expected an s3:// URI, e.g. s3://my-bucket/path")
    from hyperpod_launcher.spec.recipe_checks import s3_problem  # one rule for every s3:// value

    problem = s3_problem(value)
    if problem:
        raise UserError(f"{key}={value!r}: {problem}")
    return value


# RetryStrategy.MaximumRetryAttempts of CreateTrainingJob.
MAX_RETRY_ATTEMPTS = 30


def retry_attempts(max_restarts: int) -> int:
    """max_restarts as SageMaker's retry count (it retries internal and capacity errors only)."""
    if max_restarts > MAX_RETRY_ATTEMPTS:
        raise UserError(
            f"max_restarts={max_restarts}: SageMaker retries a training job at most "
            f"{MAX_RETRY_ATTEMPTS} times (RetryStrategy.MaximumRetryAttempts 1-30)"
        )
    return max_restarts


def role_arn(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not ROLE_ARN.match(value):
        raise UserError(
            f"{KEY}.role={value!r}: not an IAM role ARN "
            "(arn:aws:iam::<12-digit account>:role/<name>); null uses get_execution_role()"
        )
    return value


def region(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not REGION.match(value):
        raise UserError(f"{KEY}.region={value!r}: not an AWS region name, e.g. us-west-2")
    return value


def _configured_region() -> tuple[str | None, str]:
    """The region the SDK falls back on, and where it is set: the environment, else the
    profile's `region` in the AWS config file (read here without importing the SDK)."""
    import configparser
    import os

    if os.environ.get("AWS_DEFAULT_REGION"):
        return os.environ["AWS_DEFAULT_REGION"], "AWS_DEFAULT_REGION"
    path = os.environ.get("AWS_CONFIG_FILE") or os.path.expanduser("~/.aws/config")
    profile = os.environ.get("AWS_PROFILE") or os.environ.get("AWS_DEFAULT_PROFILE") or "default"
    parser = configparser.RawConfigParser()
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError):
        return None, path
    section = profile if profile == "default" else f"profile {profile}"
    return parser.get(section, "region", fallback=None), f"{path} [{section}]"


def submit_region() -> str:
    """Without cluster.sm_jobs_config.region, the region a submit would use; checked before
    anything is written."""
    value, origin = _configured_region()
    if not value:
        raise UserError(
            f"{KEY}.region is not set and no AWS region is configured "
            "(AWS_DEFAULT_REGION or the AWS config profile's region); set "
            f"{KEY}.region, e.g. {KEY}.region=us-west-2"
        )
    if not REGION.match(value):
        raise UserError(f"{origin}={value!r}: not an AWS region name, e.g. us-west-2")
    return value


def job_base_name(run_name: str, reserve: int) -> str:
    """A run name as a SageMaker job name part: [a-zA-Z0-9-], leaving `reserve` characters."""
    base = re.sub(r"-+", "-", re.sub(r"[^a-zA-Z0-9-]", "-", run_name)).strip("-") or "job"
    return base[: 63 - reserve].rstrip("-")


def job_name(value: str, key: str) -> str:
    if not JOB_NAME.match(value):
        raise UserError(
            f"{key}={value!r}: SageMaker job names are at most 63 characters of "
            "letters, digits and '-', starting with a letter or digit"
        )
    return value


def device_kind(instance_type: str) -> str:
    """The instance catalog's accelerator; for a type it lacks, the SDK's own rule: ml.p* and
    ml.g* are GPU, ml.trn* Trainium, anything else CPU."""
    from hyperpod_launcher.config import instances

    known = instances.lookup(instance_type)
    if known is not None:
        return {"gpu": "gpu", "neuron": "trainium"}.get(known.accelerator, "cpu")
    family = instance_type.split(".")[1] if instance_type.count(".") >= 2 else instance_type
    if family.startswith(("p", "g")):
        return "gpu"
    if family.startswith("trn"):
        return "trainium"
    return "cpu"


def secrets_manager(refs: Mapping[str, Any]) -> dict[str, str]:
    from hyperpod_launcher.spec.job import ENV_NAME

    for name, ref in refs.items():
        key = f"{KEY}.secrets.secrets_manager.{name}"
        if not ENV_NAME.match(name):
            raise UserError(f"{key}: not a valid environment variable name")
        if not isinstance(ref, str) or not SECRET_REF.match(ref):
            raise UserError(f"{key}={ref!r}: expected a Secrets Manager secret ARN or name")
    return dict(refs)


def file_system(fs: SmFileSystemInput, kwargs: Mapping[str, Any]) -> dict[str, str]:
    key = f"{KEY}.inputs.file_system"
    fs_id, fs_type, path = fs.id, fs.type, fs.directory_path
    if not isinstance(fs_id, str) or not FILE_SYSTEM_ID.match(fs_id):
        raise UserError(f"{key}.id={fs_id!r}: expected a file system id like fs-0123456789abcdef0")
    if fs_type is None:
        raise UserError(f"{key}.type is not set: FSxLustre or EFS")
    if not isinstance(path, str) or not path.startswith("/"):
        raise UserError(f"{key}.directory_path={path!r}: expected an absolute path, e.g. /fsx/data")
    if not kwargs.get("subnets") or not kwargs.get("security_group_ids"):
        raise UserError(
            f"{key} needs the job in your VPC: set {AEK}.subnets and "
            f"{AEK}.security_group_ids (lists)"
        )
    return {
        "file_system_id": fs_id,
        "file_system_type": fs_type,
        "directory_path": path,
        "file_system_access_mode": "ro",
    }


# CreateTrainingJob's request limits, as botocore's sagemaker model (2017-07-24) states them
# (tests/unit/test_sagemaker_limits.py compares them with the installed model). SageMaker
# checks them only when the job is created, after the source upload.
MAX_HYPERPARAMETERS, MAX_HP_KEY, MAX_HP_VALUE = 100, 256, 2500
MAX_ENVIRONMENT, MAX_ENV_KEY, MAX_ENV_VALUE = 100, 512, 512
MAX_TAGS = 50
# What the SDK adds to a script's hyperparameters: sagemaker_program, _submit_directory,
# _container_log_level, _job_name, _region and, with torchrun, _torch_distributed_enabled and
# _instance_type. It sends every value JSON-encoded (a string gains its quotes).
SDK_HYPERPARAMETERS = 7
SCRIPT_ARGS = "training_cfg.script_args"


def _shown(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:37] + "...")


def request_limits(
    hyperparameters: Mapping[str, str], environment: Mapping[str, str | None], tags: Any
) -> None:
    """Raise one line for the first part of the request over CreateTrainingJob's limits.
    `hyperparameters`: the script's own (the SDK's come on top); `environment`: the job's
    whole environment, secrets that launch.py adds at submit included (their values unknown
    here); `tags`: additional_estimator_kwargs.tags."""
    from hyperpod_launcher.spec.job import ENV_NAME

    if hyperparameters and len(hyperparameters) + SDK_HYPERPARAMETERS > MAX_HYPERPARAMETERS:
        raise UserError(
            f"{SCRIPT_ARGS}: {len(hyperparameters)} hyperparameters and the SDK's "
            f"{SDK_HYPERPARAMETERS} make {len(hyperparameters) + SDK_HYPERPARAMETERS}; "
            f"SageMaker takes at most {MAX_HYPERPARAMETERS} (CreateTrainingJob HyperParameters)"
        )
    for name, value in hyperparameters.items():
        if len(name) > MAX_HP_KEY:
            raise UserError(
                f"{SCRIPT_ARGS}: --{_shown(name)} is a {len(name)}-character hyperparameter "
                f"name; SageMaker takes at most {MAX_HP_KEY}"
            )
        sent = len(json.dumps(value))
        if sent > MAX_HP_VALUE:
            raise UserError(
                f"{SCRIPT_ARGS}: --{name}={_shown(value)} is {sent} characters as the SDK sends "
                f"it (JSON); SageMaker takes hyperparameter values of at most {MAX_HP_VALUE}"
            )
    if len(environment) > MAX_ENVIRONMENT:
        raise UserError(
            f"env_vars: the job's environment has {len(environment)} variables (the "
            f"launcher's own and the secrets included); SageMaker takes at most "
            f"{MAX_ENVIRONMENT} (CreateTrainingJob Environment)"
        )
    for name, setting in environment.items():
        if len(name) > MAX_ENV_KEY or not ENV_NAME.match(name):
            raise UserError(
                f"env_vars.{_shown(name)}: SageMaker takes environment variable names of at "
                f"most {MAX_ENV_KEY} characters matching [a-zA-Z_][a-zA-Z0-9_]*"
            )
        if setting is not None and len(setting) > MAX_ENV_VALUE:
            raise UserError(
                f"env_vars.{name}={_shown(setting)}: {len(setting)} characters; SageMaker takes "
                f"environment values of at most {MAX_ENV_VALUE} (CreateTrainingJob Environment)"
            )
    if isinstance(tags, (list, dict)) and len(tags) > MAX_TAGS:
        raise UserError(
            f"{AEK}.tags: {len(tags)} tags; SageMaker takes at most {MAX_TAGS} (CreateTrainingJob)"
        )


# StoppingCondition.MaxRuntimeInSeconds of CreateTrainingJob: 1 second to 28 days.
MAX_RUNTIME_SECONDS = 28 * 86400


def max_run(time_limit: str | None) -> tuple[int | None, str | None]:
    """run.time_limit as the estimator's max_run, within SageMaker's bounds, and the one line
    to say when it was outside them. None: leave SageMaker's default (1 day)."""
    if time_limit is None:
        return None, None
    seconds = time_limit_seconds(time_limit)
    if seconds is not None and seconds <= MAX_RUNTIME_SECONDS:
        return seconds, None
    asked = "no limit" if seconds is None else f"{seconds} s"
    return MAX_RUNTIME_SECONDS, (
        f"warning: run.time_limit={time_limit} ({asked}) is beyond SageMaker's maximum run time "
        f"of 28 days (MaxRuntimeInSeconds 1-{MAX_RUNTIME_SECONDS}); max_run={MAX_RUNTIME_SECONDS}"
    )
