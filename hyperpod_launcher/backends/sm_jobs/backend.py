"""SageMaker training jobs: launch.py on the SDK's PyTorch estimator, run at submit time.

Render is pure: it writes `recipe.yaml` (the resolved recipe, secrets left out), `launch.py`
(values as Python literals) and `<name>_submission.sh`. The SDK is imported only by launch.py,
in a child process: at submit, and in a dry run to show the exact CreateTrainingJob request.
Modes: `sdk_recipe` (llama/mistral/mixtral GPU recipes and Trainium recipes:
`PyTorch(training_recipe=...)`), `plain_recipe` (other recipes: the adapter's script as
`entry_point`), `custom` (the user's script, torch_distributed) and `custom_cpu` (CPU
instances, where torch_distributed is rejected: every host runs train_script.sh).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import pprint
import re
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from hyperpod_launcher import __version__, templating, yaml_text
from hyperpod_launcher.backends.base import (
    CANCEL,
    LOGS,
    STATUS,
    Backend,
    Rendered,
    RenderedFile,
    Submitted,
    train_script,
)
from hyperpod_launcher.backends.sm_jobs import checks
from hyperpod_launcher.backends.sm_jobs.options import (
    SmFileSystemInput,
    SmInputs,
    SmJobsConfig,
    SmS3Inputs,
    SmSecrets,
    SmTensorboardConfig,
)
from hyperpod_launcher.errors import BackendError, UserError
from hyperpod_launcher.job import RECIPE_SECRETS, SECRET_ENV, Entry, JobSpec, Secrets
from hyperpod_launcher.records import JobRecord
from hyperpod_launcher.resume import CHECKPOINT_KEYS

if TYPE_CHECKING:
    from hyperpod_launcher.status import JobStatus

KEY = checks.KEY
LAUNCH_PY = "launch.py"
SECRETS_WRAPPER = "hpl_secrets.py"
RECIPE_YAML = "recipe.yaml"
SOURCE_ROOT = "sm_source"
CONTAINER_CODE = "/opt/ml/code"  # where SageMaker unpacks the source folder
# Model types the SDK's recipe path knows in every supported release (2.236 - 2.257).
SDK_MODEL_TYPES = ("llama_v3", "mistral", "mixtral")
DEFAULT_FRAMEWORK = {"framework_version": "2.5.1", "py_version": "py311"}
# The image and distribution the SDK picks for GPU recipes, for recipes it cannot run itself.
SMP_IMAGE = {"framework": "pytorch-smp", "version": "2.4.1", "container_version": "cu121"}
SMP_DISTRIBUTION = {
    "smdistributed": {
        "modelparallel": {"enabled": True, "parameters": {"placement_strategy": "cluster"}}
    },
    "torch_distributed": {"enabled": True},
}
RDZV_PORT = 29400
REQUEST_JSON = "create_training_job.json"  # a dry run's exact request
RESULT_PREFIX = "hyperpod-launcher: submitted "
ERROR_PREFIX = "hyperpod-launcher: error: "
SDK_EXTRA = "pip install 'hyperpod-launcher[sagemaker]'"


def py_literal(value: Any) -> str:
    """A Python literal for plain config data (repr of str/int/float/bool/None/list/dict)."""
    if not checks._plain(value):
        raise UserError(f"cannot write {value!r} into launch.py: only plain config values")
    return pprint.pformat(value, width=88, sort_dicts=False)


def sdk_installed() -> bool:
    """Whether `import sagemaker` would find the SDK (looked up, not imported)."""
    try:
        return importlib.util.find_spec("sagemaker") is not None
    except (ImportError, ValueError):
        return False


def _merge(base: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _walk(data: Mapping[str, Any], prefix: tuple[str, ...] = ()):
    for key, value in data.items():
        path = (*prefix, str(key))
        yield path, value
        if isinstance(value, Mapping):
            yield from _walk(value, path)


def _recipe_overrides(overrides: Mapping[str, Any]) -> dict[str, Any]:
    owned = {
        ("trainer", "num_nodes"): "recipes.trainer.num_nodes",
        ("trainer", "devices"): "recipes.trainer.devices",
    }
    for path, value in _walk(overrides):
        key = f"{KEY}.recipe_overrides.{'.'.join(path)}"
        if path in RECIPE_SECRETS or (SECRET_ENV.search(path[-1]) and value is not None):
            raise UserError(
                f"{key}: secrets do not go into recipe_overrides (they would be written into "
                "recipe.yaml and the job's S3 source archive); set recipes.model.hf_access_token "
                "or env_vars and choose a channel under cluster.sm_jobs_config.secrets"
            )
        if path in owned:
            raise UserError(f"{key}: the launcher sizes the job from it; set {owned[path]}")
    return dict(overrides)


def _resolved_recipe(spec: JobSpec, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The recipe as the job sees it: overrides merged, secret values left out.

    The SDK resolves the recipe with OmegaConf on this host and ships it in the S3 source
    archive, so a `${oc.env:HF_TOKEN}` reference would be resolved into it in clear; the job
    gets the token from its environment instead (Hugging Face reads HF_TOKEN itself).
    """
    import yaml

    recipe = yaml.safe_load(spec.recipe_yaml or "") or {}
    recipe = _merge(recipe, overrides)
    for path in RECIPE_SECRETS:
        parent = recipe
        for part in path[:-1]:
            parent = parent.get(part) if isinstance(parent, dict) else None
        if isinstance(parent, dict) and path[-1] in parent:
            parent[path[-1]] = None
    return recipe


def _checkpoints_in_sagemaker(
    spec: JobSpec, overrides: dict[str, Any], kwargs: Mapping[str, Any]
) -> dict[str, Any]:
    """The recipe saves its checkpoints where SageMaker syncs them with checkpoint_s3_uri (and
    restores them on a retry): the estimator's checkpoint_local_path, /opt/ml/checkpoints by
    default. A recipe_overrides value for the same key wins."""
    key = CHECKPOINT_KEYS.get(spec.resume.stack) if spec.resume else None
    if key is None:
        return overrides
    *parents, leaf = key.split(".")
    node: Any = overrides
    for part in parents:
        node = node.get(part) if isinstance(node, Mapping) else None
    if isinstance(node, Mapping) and leaf in node:
        return overrides
    value: Any = kwargs.get("checkpoint_local_path", checks.CHECKPOINT_LOCAL_PATH)
    for part in reversed(key.split(".")):
        value = {part: value}
    return _merge(overrides, value)


def _inputs(inputs: SmInputs, kwargs: Mapping[str, Any]) -> tuple[Any, Any]:
    s3 = {k: v for k, v in dataclasses.asdict(inputs.s3 or SmS3Inputs()).items() if v is not None}
    fs = inputs.file_system
    if fs is not None and fs == SmFileSystemInput():
        fs = None  # every field null: no file system
    if s3 and fs:
        raise UserError(
            f"{KEY}.inputs: both s3 and file_system are set; fit() takes one kind of input, "
            "so set inputs.s3 or inputs.file_system, not both"
        )
    for channel, uri in s3.items():
        checks.s3_uri(uri, f"{KEY}.inputs.s3.{channel}")
    return (s3 or None), (checks.file_system(fs, kwargs) if fs else None)


def _tensorboard(cfg: SmTensorboardConfig) -> dict[str, str] | None:
    output, logs = cfg.output_path, cfg.container_logs_path
    if output is None:
        if logs is not None:
            raise UserError(
                f"{KEY}.tensorboard_config.container_logs_path needs "
                f"{KEY}.tensorboard_config.output_path (s3://...)"
            )
        return None
    result = {"s3_output_path": checks.s3_uri(output, f"{KEY}.tensorboard_config.output_path")}
    if logs is not None:
        if not str(logs).startswith("/"):
            raise UserError(
                f"{KEY}.tensorboard_config.container_logs_path={logs!r}: expected an absolute path"
            )
        result["container_local_output_path"] = str(logs)
    return result


def _secret_channels(spec: JobSpec, secrets_cfg: SmSecrets) -> tuple[list[str], dict]:
    """(names copied into the job Environment at submit, {name: Secrets Manager reference})."""
    refs = checks.secrets_manager(secrets_cfg.secrets_manager or {})
    in_env = secrets_cfg.environment
    uncovered = [name for name in spec.secret_env if name not in refs]
    if uncovered and not in_env:
        raise UserError(
            f"{', '.join(uncovered)} carries a secret that SageMaker can only get through a "
            f"channel you choose: set {KEY}.secrets.secrets_manager.{uncovered[0]}=<secret ARN> "
            f"(read by the job at start) or {KEY}.secrets.environment=true (the value is then "
            "visible in DescribeTrainingJob)"
        )
    return (uncovered if in_env else []), refs


def _hyperparameters(args: tuple[str, ...]) -> dict[str, str]:
    """`--flag value` pairs as SageMaker hyperparameters (the toolkit passes them back as such)."""
    result: dict[str, str] = {}
    i = 0
    while i < len(args):
        flag = args[i]
        value = args[i + 1] if i + 1 < len(args) else None
        if not flag.startswith("--") or len(flag) < 3 or value is None or value.startswith("--"):
            raise UserError(
                f"training_cfg.script_args: {flag!r}: on SageMaker script arguments are "
                "hyperparameters, so give each as '--flag: value'"
            )
        result[flag[2:]] = value
        i += 2
    return result


def _model_type(recipe: Mapping[str, Any]) -> str:
    model = recipe.get("model")
    return str(model.get("model_type") or "") if isinstance(model, Mapping) else ""


@dataclasses.dataclass(frozen=True)
class Plan:
    """Everything launch.py receives, as plain data."""

    mode: str
    job_name: str
    literals: dict[str, str]
    estimator: dict[str, Any]
    files: dict[str, RenderedFile]
    secret_env: list[str]
    wait: bool
    summary: str


def options(spec: JobSpec) -> SmJobsConfig:
    return spec.opts.sm_jobs_config


def plan(spec: JobSpec) -> Plan:
    opts = options(spec)
    if not spec.instance_type:
        raise UserError(
            "instance_type is not set: cluster=sm_jobs needs one, e.g. instance_type=ml.p5.48xlarge"
        )
    instance_type = "ml." + spec.instance_type
    kind = checks.device_kind(instance_type)
    if opts.output_path is None:
        raise UserError(
            f"{KEY}.output_path is not set: give an s3:// URI for the job's output, e.g. "
            f"cluster.sm_jobs_config.output_path=s3://my-bucket/{spec.name}"
        )
    output_path = checks.s3_uri(opts.output_path, f"{KEY}.output_path")
    kwargs = checks.estimator_kwargs(opts.additional_estimator_kwargs or {})
    s3_inputs, file_system = _inputs(opts.inputs, kwargs)
    role = checks.role_arn(opts.role)
    region = checks.region(opts.region)
    tensorboard = _tensorboard(opts.tensorboard_config)
    secret_env, secret_refs = _secret_channels(spec, opts.secrets)
    overrides = _recipe_overrides(opts.recipe_overrides or {})

    # The top-level `wait` (when set) wins over the cluster file's.
    wait = opts.wait if spec.wait is None else spec.wait

    suffix = f"-{spec.launch_id}"
    base_job_name = checks.job_base_name(spec.name, len(suffix))
    job_name = checks.job_name(base_job_name + suffix, "recipes.run.name")

    source_dir = f"{SOURCE_ROOT}/{spec.launch_id}"
    files: dict[str, RenderedFile] = {}
    ship: list[list[str]] = []
    checkout = os.path.relpath(spec.code.checkout_dir, spec.job_dir) if spec.code.location else None
    estimator: dict[str, Any] = {
        "output_path": output_path,
        "instance_type": instance_type,
        "instance_count": spec.nodes,
        "base_job_name": base_job_name,
    }
    if spec.image:
        estimator["image_uri"] = spec.image
    if spec.max_restarts:
        estimator["max_retry_attempts"] = checks.retry_attempts(spec.max_restarts)
    run_seconds, run_note = checks.max_run(spec.time_limit)
    notes = [run_note] if run_note and "max_run" not in kwargs else []
    if run_seconds is not None:
        estimator["max_run"] = run_seconds  # an explicit additional_estimator_kwargs.max_run wins
    estimator.update(kwargs)
    literals: dict[str, Any] = {"code_package": None}

    if spec.mode == "recipe":
        if kind == "cpu":
            raise UserError(
                f"instance_type={instance_type}: recipes need a GPU (ml.p*, ml.g*) or Trainium "
                "(ml.trn*) instance; CPU instances run custom scripts only (training_cfg)"
            )
        overrides = _checkpoints_in_sagemaker(spec, overrides, kwargs)
        recipe = _resolved_recipe(spec, overrides)
        files[RECIPE_YAML] = RenderedFile(yaml_text.dump(recipe))
        model_type = _model_type(recipe)
        if kind == "trainium" or model_type.startswith(SDK_MODEL_TYPES):
            mode = "sdk_recipe"
            literals |= {
                "recipe_overrides": overrides,
                "code_checkout": checkout or "code/none",
                "trainium": kind == "trainium",
                "code_package": _code_package(spec, checkout, "."),  # the SDK's entry: the root
            }
        else:
            mode = "plain_recipe"
            if spec.entry.module or not spec.entry.script:
                raise UserError(
                    f"git.entry_module={spec.entry.module}: SageMaker runs a script; set "
                    "git.entry_script (this recipe's model type is not one the SDK runs itself)"
                )
            entry, shipped = _entry_source(spec.entry.script, checkout)
            ship += [*shipped, [RECIPE_YAML, RECIPE_YAML]]
            # Files the recipe reads next to itself (e.g. ds_config.json) travel with it.
            for name, text in spec.config_files:
                files[f"{source_dir}/{name}"] = RenderedFile(text)
            smp = kind == "gpu" and bool(recipe.get("use_smp_model"))
            if not spec.image and not smp and kind == "gpu":
                for name, value in DEFAULT_FRAMEWORK.items():
                    estimator.setdefault(name, value)
            literals |= {
                "entry_point": entry,
                "code_package": _code_package(spec, checkout, os.path.dirname(entry)),
                "hyperparameters": {"config-path": CONTAINER_CODE, "config-name": RECIPE_YAML},
                # Adapter (SMP) recipes get what the SDK gives its own GPU recipes.
                "distribution": SMP_DISTRIBUTION if smp else _torch_distributed(),
                "image_from": SMP_IMAGE if smp and not spec.image else None,
            }
    else:
        if spec.entry.module:
            raise UserError(
                f"git.entry_module={spec.entry.module}: SageMaker runs a script; "
                "set training_cfg.entry_script"
            )
        entry, shipped = _entry_source(spec.entry.script or "", checkout)
        ship += shipped
        if kind == "trainium" and not spec.image and "framework_version" not in kwargs:
            raise UserError(
                f"instance_type={instance_type}: custom scripts on Trainium need a Neuron "
                "training image: set container=<image URI>"
            )
        if not spec.image:
            for name, value in DEFAULT_FRAMEWORK.items():
                estimator.setdefault(name, value)
        if kind == "cpu":
            mode = "custom_cpu"
            node_spec = dataclasses.replace(
                spec,
                job_dir=CONTAINER_CODE,
                workdir=CONTAINER_CODE,
                exp_dir=None,
                entry=Entry(entry, None, spec.entry.args),
            )
            files[f"{source_dir}/train_script.sh"] = train_script(node_spec)
            node = templating.render(
                "sagemaker/sm_node.py.j2", version=__version__, rdzv_port=RDZV_PORT
            )
            files[f"{source_dir}/sm_node.py"] = RenderedFile(node)
            literals |= {
                "entry_point": "sm_node.py",
                "hyperparameters": {},
                "distribution": None,
                "image_from": None,
            }
        else:
            mode = "custom"
            literals |= {
                "entry_point": entry,
                "hyperparameters": _hyperparameters(spec.entry.args),
                "distribution": _torch_distributed(),
                "image_from": None,
            }

    environment = dict(spec.env)
    if secret_refs:  # the job's entry point becomes the wrapper that reads them at start
        files[f"{source_dir}/{SECRETS_WRAPPER}"] = RenderedFile(
            templating.render("sagemaker/hpl_secrets.py.j2", version=__version__)
        )
        environment["HPL_SECRETS_MANAGER"] = json.dumps(secret_refs, sort_keys=True)
        if mode != "sdk_recipe":  # there launch.py swaps the SDK's chosen script
            environment["HPL_ENTRY_POINT"] = literals["entry_point"]
            literals["entry_point"] = SECRETS_WRAPPER
    at_submit = dict.fromkeys(secret_env) | (
        {"HPL_SECRETS_REGION": "", "HPL_ENTRY_POINT": ""} if secret_refs else {}
    )  # what launch.py adds (the secrets' values come from its environment)
    checks.request_limits(
        literals["hyperparameters"] if mode == "custom" else {},
        {**environment, **at_submit},
        estimator.get("tags"),
    )
    literals |= {
        "secrets_wrapper": bool(secret_refs),
        "job_name": job_name,
        "launch_id": spec.launch_id,
        "region": region,
        "role": role,
        "source_dir": source_dir,
        "ship": ship,
        "estimator": estimator,
        "environment": environment,
        "secret_env": secret_env,
        "tensorboard": tensorboard,
        "s3_inputs": s3_inputs,
        "file_system": file_system,
        "wait": wait,
    }
    head = f"sm_jobs job {job_name}: {spec.nodes} x {instance_type} ({mode.replace('_', ' ')})"
    summary = "\n".join([head, *notes])
    return Plan(
        mode=mode,
        job_name=job_name,
        literals={name: py_literal(value) for name, value in literals.items()},
        estimator={
            **estimator,
            "role": role or "<sagemaker.get_execution_role()>",
            "environment": {**environment, **dict.fromkeys(secret_env, "****")},
            **{
                k: literals[k]
                for k in ("entry_point", "hyperparameters", "distribution")
                if k in literals
            },
            **({"recipe_overrides": overrides} if mode == "sdk_recipe" else {}),
            "source_dir": os.path.join(spec.job_dir, source_dir),
        },
        files=files,
        secret_env=secret_env,
        wait=wait,
        summary=summary,
    )


def _code_package(spec: JobSpec, checkout: str | None, entry_dir: str) -> list[str] | None:
    """[source, target, name]: the pinned checkout's training code package, copied next to the
    entry script, whose folder comes first on sys.path: imported ahead of the image's copy."""
    if not checkout or not spec.code_package:
        return None
    name = os.path.basename(spec.code_package)
    target = os.path.normpath(os.path.join(entry_dir, name))
    return [os.path.join(checkout, spec.code_package), target, spec.code_package]


def _entry_source(script: str, checkout: str | None) -> tuple[str, list[list[str]]]:
    """The entry point (relative to the source folder) and what to copy there for it."""
    if checkout:  # the launcher's checkout of git.repo_url_or_path, copied whole (not .git)
        return script, [[checkout, "."]]
    if not os.path.isabs(script):
        raise UserError(
            f"entry script {script!r}: SageMaker needs the code here to upload it; set "
            "git.repo_url_or_path, or give an absolute path to a script on this machine"
        )
    # A script on this machine is uploaded alone (launch.py says if it does not exist).
    return os.path.basename(script), [[script, os.path.basename(script)]]


def _torch_distributed() -> dict[str, Any]:
    return {"torch_distributed": {"enabled": True}}


class SageMakerBackend(Backend):
    name = "sm_jobs"
    preflight_checks = "hyperpod_launcher.backends.sm_jobs.preflight"  # what `preflight` asks
    capabilities = frozenset({STATUS, LOGS, CANCEL})

    # The job commands need boto3 and none of the rendering code: they live apart.
    def status(self, records: list[JobRecord], detailed: bool = False) -> list[JobStatus]:
        from hyperpod_launcher.backends.sm_jobs.jobs import SageMakerJobs

        return SageMakerJobs().status(records, detailed)

    def logs(self, record: JobRecord, follow: bool, rank: int | None) -> Iterator[str]:
        from hyperpod_launcher.backends.sm_jobs.jobs import SageMakerJobs

        return SageMakerJobs().logs(record, follow, rank)

    def cancel(self, record: JobRecord) -> str:
        from hyperpod_launcher.backends.sm_jobs.jobs import SageMakerJobs

        return SageMakerJobs().cancel(record)

    def render(self, spec: JobSpec) -> Rendered:
        job = plan(spec)
        if not spec.dry_run and not sdk_installed():
            raise UserError(f"the SageMaker Python SDK is not installed: {SDK_EXTRA}")
        submission = f"{spec.name}_submission.sh"
        context = {
            "spec": spec,
            "version": __version__,
            "mode": job.mode,
            "lit": job.literals,
            "secret_env": job.secret_env,
            "submission": submission,
            "job_name": job.job_name,
        }
        files = dict(job.files)
        files[LAUNCH_PY] = RenderedFile(
            templating.render("sagemaker/launch.py.j2", **context), 0o755
        )
        files[submission] = RenderedFile(
            templating.render("sagemaker/submission.sh.j2", **context), 0o755
        )
        argv = (sys.executable, os.path.join(spec.job_dir, LAUNCH_PY))
        return Rendered(files, argv, job.summary, request=job)

    def estimator_arguments(self, spec: JobSpec) -> dict[str, Any]:
        return plan(spec).estimator

    def _env(self, secrets: Secrets, names: list[str], placeholder: bool) -> dict[str, str]:
        env = {**os.environ, **secrets.env}
        if placeholder:  # a dry run never hands secret values to the SDK
            env.update(dict.fromkeys(names, "****"))
        return env

    def submit(self, spec: JobSpec, rendered: Rendered, secrets: Secrets) -> Submitted:
        if not sdk_installed():
            raise BackendError(f"the SageMaker Python SDK is not installed: {SDK_EXTRA}")
        job: Plan = rendered.request
        log_path = os.path.join(spec.job_dir, f"sm_submit-{spec.launch_id}.log")
        proc = subprocess.Popen(
            rendered.submit_argv,
            cwd=spec.job_dir,
            env=self._env(secrets, job.secret_env, placeholder=False),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        assert proc.stdout is not None
        result: dict[str, Any] | None = None
        error = None
        with open(log_path, "a", encoding="utf-8") as log:
            for raw in proc.stdout:
                line = secrets.mask(raw.decode(errors="replace"))
                log.write(line)
                log.flush()
                # The SDK's progress dots may precede our lines on the same line.
                if RESULT_PREFIX in line:
                    line, _, payload = line.partition(RESULT_PREFIX)
                    result = json.loads(payload)
                    line += "\n" if line else ""
                elif ERROR_PREFIX in line and error is None:
                    line, _, message = line.partition(ERROR_PREFIX)
                    error = message.strip()
                    line += "\n" if line else ""
                sys.stdout.write(line)
                sys.stdout.flush()
        returncode = proc.wait()
        if returncode != 0 or result is None:
            message = error or f"launch.py exited with status {returncode}"
            raise BackendError(f"SageMaker submit failed: {message} (log: {log_path})")
        details: dict[str, object] = {
            "training_job_name": result.get("TrainingJobName"),
            "training_job_arn": result.get("TrainingJobArn"),
            "training_job_status": result.get("TrainingJobStatus"),
            "region": result.get("Region"),
            "log": log_path,
        }
        if job.wait:
            details["exit_code"] = 0 if result.get("TrainingJobStatus") == "Completed" else 1
            return Submitted(result.get("TrainingJobName"), details["exit_code"], details)
        return Submitted(result.get("TrainingJobName"), 0, details)

    def dry_run(
        self, spec: JobSpec, rendered: Rendered, jobdir: Any, say: Callable[[str], None]
    ) -> list[str]:
        """Say the estimator arguments, then (with the SDK) the exact CreateTrainingJob request,
        which is also kept as create_training_job.json. No AWS call, no upload."""
        job: Plan = rendered.request
        say("estimator arguments: " + json.dumps(job.estimator, indent=2))
        if not sdk_installed():
            say(f"dry run: the exact CreateTrainingJob request needs the SDK: {SDK_EXTRA}")
            return []
        if job.mode != "sdk_recipe" and spec.code.location:
            # The source folder is filled from the launcher's checkout, made at submit.
            say("dry run: the exact CreateTrainingJob request needs the code checkout (at submit)")
            return []
        if spec.code.is_local and spec.code.checkout_dir:
            # launch.py serves the SDK's code clone from this checkout, as at submit; a
            # local repository needs no network, so the dry run makes it too.
            from hyperpod_launcher import code

            code.checkout(spec.code, Secrets())
        runner = os.path.join(os.path.dirname(__file__), "preview.py")
        proc = subprocess.run(
            [sys.executable, runner, rendered.submit_argv[-1]],
            cwd=spec.job_dir,
            # Secret values never reach a dry run: the request shows placeholders.
            env={**os.environ, **dict.fromkeys(job.secret_env, "****")},
            capture_output=True,
            text=True,
            check=False,
            stdin=subprocess.DEVNULL,
        )
        marker = proc.stdout.find(PREVIEW_MARKER)
        if proc.returncode != 0 or marker < 0:
            errors = [ln for ln in proc.stderr.splitlines() if ln.strip()]
            ours = [ln for ln in errors if ln.startswith(ERROR_PREFIX)]
            message = (ours[:1] or errors[-1:] or ["(no output)"])[0].removeprefix(ERROR_PREFIX)
            clone = re.search(r"'clone', '([^']+)'", message)
            if clone:
                raise BackendError(
                    f"dry run: the SageMaker SDK could not clone {clone.group(1)}; it needs the "
                    "network (git.repo_url_or_path=<local repository> works offline)"
                )
            raise BackendError(f"dry run: launch.py failed before CreateTrainingJob: {message}")
        request = proc.stdout[marker + len(PREVIEW_MARKER) :].strip()
        say("CreateTrainingJob request: " + request)
        jobdir.write(REQUEST_JSON, request + "\n")
        return [REQUEST_JSON]


PREVIEW_MARKER = "hyperpod-launcher: CreateTrainingJob "
