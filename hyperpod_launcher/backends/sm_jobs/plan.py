"""The SageMaker request of one launch, computed once by render: a shared part (instance,
output, role, region, inputs, secrets, limits) plus one small builder per mode.

Modes: `sdk_recipe` (llama/mistral/mixtral GPU recipes and Trainium recipes: the SDK's
`PyTorch(training_recipe=...)`), `plain_recipe` (other recipes: the adapter's script as
`entry_point`), `custom` (the user's script, torch_distributed) and `custom_cpu` (CPU
instances, where torch_distributed is rejected: every host runs train_script.sh). The result
is plain JSON data that runner.py (the job folder's launch.py) turns into SDK calls.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hyperpod_launcher import __version__, stacks
from hyperpod_launcher.backends.base import RenderedFile, train_script
from hyperpod_launcher.backends.sm_jobs import checks
from hyperpod_launcher.backends.sm_jobs.defaults import CHECKPOINTS
from hyperpod_launcher.backends.sm_jobs.options import (
    SmFileSystemInput,
    SmInputs,
    SmJobsConfig,
    SmS3Inputs,
    SmSecrets,
    SmTensorboardConfig,
)
from hyperpod_launcher.spec.job import Entry, JobSpec
from hyperpod_launcher.stacks import train_stack
from hyperpod_launcher.telemetry.sagemaker import metric_definitions
from hyperpod_launcher.util import resources, templating, yaml_text
from hyperpod_launcher.util.errors import UserError
from hyperpod_launcher.util.masking import RECIPE_SECRETS, SECRET_ENV

KEY = checks.KEY
SECRETS_WRAPPER = "hpl_secrets.py"
RECIPE_YAML = "recipe.yaml"
SOURCE_ROOT = "sm_source"
CONTAINER_CODE = "/opt/ml/code"  # where SageMaker unpacks the source folder
# Model types the SDK's recipe path knows in every supported release (2.236 - 2.257).
SDK_MODEL_TYPES = ("llama_v3", "mistral", "mixtral")
DEFAULT_FRAMEWORK = {"framework_version": "2.5.1", "py_version": "py311"}
OPEN_FT_FRAMEWORK = {"framework_version": "2.8.0", "py_version": "py312"}  # torch >= 2.6
# The image and distribution the SDK picks for GPU recipes, for recipes it cannot run itself.
SMP_IMAGE = {"framework": "pytorch-smp", "version": "2.4.1", "container_version": "cu121"}
SMP_DISTRIBUTION = {
    "smdistributed": {
        "modelparallel": {"enabled": True, "parameters": {"placement_strategy": "cluster"}}
    },
    "torch_distributed": {"enabled": True},
}
RDZV_PORT = 29400


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


def _check_recipe_overrides(overrides: Mapping[str, Any]) -> None:
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
        parent: Any = recipe
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
    key = stacks.get(spec.stack).checkpoint_key if spec.stack else None
    if key is None:
        return overrides
    *parents, leaf = key.split(".")
    node: Any = overrides
    for part in parents:
        node = node.get(part) if isinstance(node, Mapping) else None
    if isinstance(node, Mapping) and leaf in node:
        return overrides
    value: Any = kwargs.get("checkpoint_local_path", CHECKPOINTS)
    for part in reversed(key.split(".")):
        value = {part: value}
    return _merge(overrides, value)


MODEL_DIR = "/opt/ml/model"  # uploaded to <output_path>/<job>/output/model.tar.gz
READ_ROOTS = ("/opt/ml",)  # what a recipe may read on the instance: channels, code, ...


def _final_model_in_sagemaker(spec: JobSpec, overrides: dict[str, Any]) -> dict[str, Any]:
    """The final model goes where SageMaker uploads it, unless the recipe names a folder."""
    import yaml

    key = stacks.get(spec.stack).final_model_key if spec.stack else None
    if key is None:
        return overrides
    recipe = _merge(yaml.safe_load(spec.recipe_yaml or "") or {}, overrides)
    node: Any = recipe
    for part in key.split("."):
        node = node.get(part) if isinstance(node, Mapping) else None
    if node is not None:
        return overrides
    value: Any = MODEL_DIR
    for part in reversed(key.split(".")):
        value = {part: value}
    return _merge(overrides, value)


def _check_paths_on_instances(recipe: Mapping[str, Any], checkpoints: str) -> None:
    """A path of the submit host is on no SageMaker instance: data needs a channel, FSx or S3,
    and outputs a folder SageMaker keeps."""
    from hyperpod_launcher.spec.mounts import unreachable

    for key, path, written in unreachable(recipe, READ_ROOTS):
        fix = (
            f"write under {CHECKPOINTS} (synced to checkpoint_s3_uri) or {MODEL_DIR}"
            if written
            else f"give an s3:// URI, or a channel's folder: {KEY}.inputs.s3.<channel> or "
            f"{KEY}.inputs.file_system (FSx) is read at /opt/ml/input/data/<channel>"
        )
        raise UserError(f"recipes.{key}={path}: no SageMaker instance sees this path; {fix}")
    kept = (checkpoints, CHECKPOINTS, MODEL_DIR, "/opt/ml/output")
    for key, path, written in unreachable(recipe, kept):
        if written:
            raise UserError(
                f"recipes.{key}={path}: SageMaker keeps nothing written there; write under "
                f"{CHECKPOINTS} (synced to checkpoint_s3_uri) or {MODEL_DIR}"
            )


def _checkpoint_s3_uri(shared: Shared, job_name: str) -> None:
    """A recipe writes its checkpoints (and caches) to /opt/ml/checkpoints: SageMaker syncs
    that folder only with a CheckpointConfig, by default under the job's output path."""
    output = str(shared.estimator["output_path"]).rstrip("/")
    shared.estimator.setdefault("checkpoint_s3_uri", f"{output}/{job_name}/checkpoints")


def _input_parts(inputs: SmInputs) -> tuple[dict[str, str], SmFileSystemInput | None]:
    s3 = {k: v for k, v in dataclasses.asdict(inputs.s3 or SmS3Inputs()).items() if v is not None}
    fs = inputs.file_system
    if fs is not None and fs == SmFileSystemInput():
        fs = None  # every field null: no file system
    return s3, fs


def _check_inputs(inputs: SmInputs) -> None:
    s3, fs = _input_parts(inputs)
    if s3 and fs:
        raise UserError(
            f"{KEY}.inputs: both s3 and file_system are set; fit() takes one kind of input, "
            "so set inputs.s3 or inputs.file_system, not both"
        )
    for channel, uri in s3.items():
        checks.s3_uri(uri, f"{KEY}.inputs.s3.{channel}")


def _inputs(inputs: SmInputs, kwargs: Mapping[str, Any]) -> tuple[Any, Any]:
    s3, fs = _input_parts(inputs)
    return (s3 or None), (checks.file_system(fs, kwargs) if fs else None)


def _check_tensorboard(cfg: SmTensorboardConfig) -> None:
    output, logs = cfg.output_path, cfg.container_logs_path
    if output is None and logs is not None:
        raise UserError(
            f"{KEY}.tensorboard_config.container_logs_path needs "
            f"{KEY}.tensorboard_config.output_path (s3://...)"
        )
    if output is not None:
        checks.s3_uri(output, f"{KEY}.tensorboard_config.output_path")
    if logs is not None and not str(logs).startswith("/"):
        raise UserError(
            f"{KEY}.tensorboard_config.container_logs_path={logs!r}: expected an absolute path"
        )


def _tensorboard(cfg: SmTensorboardConfig) -> dict[str, str] | None:
    output, logs = cfg.output_path, cfg.container_logs_path
    if output is None:
        return None
    result = {"s3_output_path": str(output)}
    if logs is not None:
        result["container_local_output_path"] = str(logs)
    return result


def _check_secret_channels(spec: JobSpec, secrets_cfg: SmSecrets) -> None:
    refs = checks.secrets_manager(secrets_cfg.secrets_manager or {})
    uncovered = [name for name in spec.secret_env if name not in refs]
    if uncovered and not secrets_cfg.environment:
        raise UserError(
            f"{', '.join(uncovered)} carries a secret that SageMaker can only get through a "
            f"channel you choose: set {KEY}.secrets.secrets_manager.{uncovered[0]}=<secret ARN> "
            f"(read by the job at start) or {KEY}.secrets.environment=true (the value is then "
            "visible in DescribeTrainingJob)"
        )


def _secret_channels(spec: JobSpec, secrets_cfg: SmSecrets) -> tuple[list[str], dict]:
    """(names copied into the job Environment at submit, {name: Secrets Manager reference})."""
    refs = dict(secrets_cfg.secrets_manager or {})
    uncovered = [name for name in spec.secret_env if name not in refs]
    return (uncovered if secrets_cfg.environment else []), refs


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
    # A script on this machine is uploaded alone (launch.py says if it does not exist), with
    # the modules a built-in example imports from its folder.
    paths = [script, *resources.example_companions(script)]
    return os.path.basename(script), [[path, os.path.basename(path)] for path in paths]


def _torch_distributed() -> dict[str, Any]:
    return {"torch_distributed": {"enabled": True}}


@dataclass
class Shared:
    """What every mode has: checked cluster-file values and the estimator's common arguments."""

    instance_type: str
    kind: str  # gpu, trainium or cpu
    kwargs: dict[str, Any]  # additional_estimator_kwargs, checked
    estimator: dict[str, Any]
    overrides: dict[str, Any]  # recipe_overrides
    checkout: str | None  # the launcher's code checkout, relative to the job folder
    source_dir: str
    notes: list[str]


@dataclass
class ModePart:
    """What one mode adds: files for the job folder, what to ship in the source folder, and
    either the recipe the SDK resolves (`recipe`) or the script it runs (`script`)."""

    mode: str
    files: dict[str, RenderedFile] = field(default_factory=dict)
    ship: list[list[str]] = field(default_factory=list)
    recipe: dict[str, Any] | None = None
    script: dict[str, Any] | None = None
    code_package: list[str] | None = None  # see _code_package


@dataclass(frozen=True)
class Plan:
    """The request runner.py receives (`request`, plain JSON data) and what render writes."""

    mode: str
    job_name: str
    request: dict[str, Any]
    files: dict[str, RenderedFile]
    secret_env: tuple[str, ...]
    wait: bool
    summary: str


def validate(spec: JobSpec) -> None:
    """The values of the cluster file and the job that need nothing rendered (SageMaker's
    form of each); render then takes them as they are."""
    opts: SmJobsConfig = spec.opts.sm_jobs_config
    if not spec.instance_type:
        raise UserError(
            "instance_type is not set: cluster=sm_jobs needs one, e.g. instance_type=ml.p5.48xlarge"
        )
    if opts.output_path is None:
        raise UserError(
            f"{KEY}.output_path is not set: give an s3:// URI for the job's output, e.g. "
            f"cluster.sm_jobs_config.output_path=s3://my-bucket/{spec.name}"
        )
    checks.s3_uri(opts.output_path, f"{KEY}.output_path")
    _check_recipe_overrides(opts.recipe_overrides or {})
    _check_inputs(opts.inputs)
    checks.role_arn(opts.role)
    checks.region(opts.region)
    _check_tensorboard(opts.tensorboard_config)
    _check_secret_channels(spec, opts.secrets)


def _shared(spec: JobSpec, opts: SmJobsConfig) -> Shared:
    instance_type = f"ml.{spec.instance_type}"
    kwargs = checks.estimator_kwargs(opts.additional_estimator_kwargs or {})
    estimator: dict[str, Any] = {
        "output_path": opts.output_path,
        "instance_type": instance_type,
        "instance_count": spec.nodes,
        "base_job_name": base_job_name(spec),
        "metric_definitions": metric_definitions(),  # the hpl-metrics line, for CloudWatch
    }
    if spec.image:
        estimator["image_uri"] = spec.image
    if spec.max_restarts:
        estimator["max_retry_attempts"] = checks.retry_attempts(spec.max_restarts)
    run_seconds, run_note = checks.max_run(spec.time_limit)
    if run_seconds is not None:
        estimator["max_run"] = run_seconds  # an explicit additional_estimator_kwargs.max_run wins
    estimator.update(kwargs)
    return Shared(
        instance_type=instance_type,
        kind=checks.device_kind(instance_type),
        kwargs=kwargs,
        estimator=estimator,
        overrides=dict(opts.recipe_overrides or {}),
        checkout=os.path.relpath(spec.code.checkout_dir, spec.launch_dir)
        if spec.code.location and spec.code.checkout_dir
        else None,
        source_dir=f"{SOURCE_ROOT}/{spec.launch_id}",
        notes=[run_note] if run_note and "max_run" not in kwargs else [],
    )


def base_job_name(spec: JobSpec) -> str:
    return checks.job_base_name(spec.name, len(f"-{spec.launch_id}"))


def _open_ft_image(shared: Shared, files: dict[str, RenderedFile]) -> None:
    """Open fine-tuning: a PyTorch image new enough for Transformers 5, and the rest of the
    stack from a requirements.txt beside the entry (the image installs it before starting)."""
    for name, value in OPEN_FT_FRAMEWORK.items():
        shared.estimator.setdefault(name, value)
    files[f"{shared.source_dir}/requirements.txt"] = RenderedFile(train_stack.requirements_txt())


def _default_framework(shared: Shared) -> None:
    for name, value in DEFAULT_FRAMEWORK.items():
        shared.estimator.setdefault(name, value)


def _sdk_recipe(spec: JobSpec, shared: Shared, overrides: dict[str, Any]) -> ModePart:
    """GPU recipes of a model type the SDK runs itself, and every Trainium recipe."""
    return ModePart(
        "sdk_recipe",
        code_package=_code_package(spec, shared.checkout, "."),  # the SDK's entry: the root
        recipe={
            "training_recipe": RECIPE_YAML,
            "recipe_overrides": overrides,
            # The launcher's pinned checkout of the code the SDK clones for the recipe (the
            # training adapter on GPU, NxD Training on Trainium).
            "code_checkout": shared.checkout or "code/none",
            "trainium": shared.kind == "trainium",
        },
    )


def _plain_recipe(spec: JobSpec, shared: Shared, recipe: Mapping[str, Any]) -> ModePart:
    """Other GPU recipes: the adapter's entry script, with the recipe beside it."""
    if spec.entry.module or not spec.entry.script:
        raise UserError(
            f"git.entry_module={spec.entry.module}: SageMaker runs a script; set "
            "git.entry_script (this recipe's model type is not one the SDK runs itself)"
        )
    entry, shipped = _entry_source(spec.entry.script, shared.checkout)
    # Files the recipe reads next to itself (e.g. ds_config.json) travel with it.
    files = {f"{shared.source_dir}/{name}": RenderedFile(text) for name, text in spec.config_files}
    smp = bool(recipe.get("use_smp_model"))
    if not spec.image and train_stack.is_open_ft(recipe):
        _open_ft_image(shared, files)
    if not spec.image and not smp:
        _default_framework(shared)
    return ModePart(
        "plain_recipe",
        files=files,
        ship=[*shipped, [RECIPE_YAML, RECIPE_YAML]],
        code_package=_code_package(spec, shared.checkout, os.path.dirname(entry)),
        script={
            "entry_point": entry,
            "hyperparameters": {"config-path": CONTAINER_CODE, "config-name": RECIPE_YAML},
            # Adapter (SMP) recipes get what the SDK gives its own GPU recipes.
            "distribution": SMP_DISTRIBUTION if smp else _torch_distributed(),
            "image_from": SMP_IMAGE if smp and not spec.image else None,
        },
    )


def _custom(spec: JobSpec, shared: Shared, entry: str) -> ModePart:
    """The user's script on GPU or Trainium instances, started by torch_distributed."""
    if shared.kind == "trainium" and not spec.image and "framework_version" not in shared.kwargs:
        raise UserError(
            f"instance_type={shared.instance_type}: custom scripts on Trainium need a Neuron "
            "training image: set container=<image URI>"
        )
    return ModePart(
        "custom",
        script={
            "entry_point": entry,
            "hyperparameters": _hyperparameters(spec.entry.args),
            "distribution": _torch_distributed(),
            "image_from": None,
        },
    )


def _custom_cpu(spec: JobSpec, shared: Shared, entry: str) -> ModePart:
    """The user's script on CPU instances: every host runs the per-node train_script.sh."""
    node_spec = dataclasses.replace(
        spec,
        job_dir=CONTAINER_CODE,
        workdir=CONTAINER_CODE,
        exp_dir=None,
        entry=Entry(entry, None, spec.entry.args),
    )
    node = templating.render("sm_jobs/sm_node.py.j2", version=__version__, rdzv_port=RDZV_PORT)
    return ModePart(
        "custom_cpu",
        files={
            f"{shared.source_dir}/train_script.sh": train_script(node_spec),
            f"{shared.source_dir}/sm_node.py": RenderedFile(node),
        },
        script={
            "entry_point": "sm_node.py",
            "hyperparameters": {},
            "distribution": None,
            "image_from": None,
        },
    )


def _recipe_part(spec: JobSpec, shared: Shared) -> ModePart:
    if shared.kind == "cpu":
        raise UserError(
            f"instance_type={shared.instance_type}: recipes need a GPU (ml.p*, ml.g*) or "
            "Trainium (ml.trn*) instance; CPU instances run custom scripts only (training_cfg)"
        )
    overrides = _checkpoints_in_sagemaker(spec, shared.overrides, shared.kwargs)
    overrides = _final_model_in_sagemaker(spec, overrides)
    recipe = _resolved_recipe(spec, overrides)
    _check_paths_on_instances(recipe, shared.kwargs.get("checkpoint_local_path", CHECKPOINTS))
    if shared.kind == "trainium" or _model_type(recipe).startswith(SDK_MODEL_TYPES):
        part = _sdk_recipe(spec, shared, overrides)
    else:
        part = _plain_recipe(spec, shared, recipe)
    part.files[RECIPE_YAML] = RenderedFile(yaml_text.dump(recipe))
    return part


def _custom_part(spec: JobSpec, shared: Shared) -> ModePart:
    if spec.entry.module:
        raise UserError(
            f"git.entry_module={spec.entry.module}: SageMaker runs a script; "
            "set training_cfg.entry_script"
        )
    entry, shipped = _entry_source(spec.entry.script or "", shared.checkout)
    part = (_custom_cpu if shared.kind == "cpu" else _custom)(spec, shared, entry)
    if not spec.image:
        _default_framework(shared)
    part.ship = [*shipped, *part.ship]
    return part


def plan(spec: JobSpec, wait: bool | None) -> Plan:
    """`wait`: the launch's own (the top-level `wait`), which wins over the cluster file's."""
    opts: SmJobsConfig = spec.opts.sm_jobs_config
    shared = _shared(spec, opts)
    s3_inputs, file_system = _inputs(opts.inputs, shared.kwargs)
    role, region = opts.role, opts.region
    tensorboard = _tensorboard(opts.tensorboard_config)
    secret_env, secret_refs = _secret_channels(spec, opts.secrets)
    wait = opts.wait if wait is None else wait
    job_name = checks.job_name(f"{base_job_name(spec)}-{spec.launch_id}", "recipes.run.name")

    part = (_recipe_part if spec.mode == "recipe" else _custom_part)(spec, shared)
    if spec.mode == "recipe":
        _checkpoint_s3_uri(shared, job_name)
    files = dict(part.files)
    environment = dict(spec.env)
    if secret_refs:  # the job's entry point becomes the wrapper that reads them at start
        files[f"{shared.source_dir}/{SECRETS_WRAPPER}"] = RenderedFile(
            templating.render("sm_jobs/hpl_secrets.py.j2", version=__version__)
        )
        environment["HPL_SECRETS_MANAGER"] = json.dumps(secret_refs, sort_keys=True)
        if part.script is not None:  # for a recipe, runner.py swaps the SDK's chosen script
            environment["HPL_ENTRY_POINT"] = part.script["entry_point"]
            part.script["entry_point"] = SECRETS_WRAPPER
    at_submit = dict.fromkeys(secret_env) | (
        {"HPL_SECRETS_REGION": "", "HPL_ENTRY_POINT": ""} if secret_refs else {}
    )  # what runner.py adds at submit (the secrets come from its environment)
    checks.request_limits(
        part.script["hyperparameters"] if part.mode == "custom" and part.script else {},
        {**environment, **at_submit},
        shared.estimator.get("tags"),
    )
    request = {
        "launcher_version": __version__,
        "job_name": job_name,
        "launch_id": spec.launch_id,
        "mode": part.mode,
        "region": region,
        "role": role,
        "source_dir": shared.source_dir,
        "ship": part.ship,
        "code_package": part.code_package,
        "estimator": shared.estimator,
        "recipe": part.recipe,
        "script": part.script,
        "environment": environment,
        "secret_env": secret_env,
        "secrets_wrapper": bool(secret_refs),
        "tensorboard": tensorboard,
        "inputs": {"s3": s3_inputs, "file_system": file_system},
        "wait": wait,
    }
    if not checks._plain(request):
        raise UserError(f"cannot send {request!r} to SageMaker: only plain config values")
    mode = part.mode.replace("_", " ")
    head = f"sm_jobs job {job_name}: {spec.nodes} x {shared.instance_type} ({mode})"
    return Plan(
        mode=part.mode,
        job_name=job_name,
        request=request,
        files=files,
        secret_env=tuple(secret_env),
        wait=wait,
        summary="\n".join([head, *shared.notes]),
    )
