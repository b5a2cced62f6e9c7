"""Build the JobSpec from the composed config, checking it: one line per problem.

A shared part checks the launcher's own keys and the cluster section; one builder per mode
(a recipe, or a custom script under training_cfg) reads that mode's section; the filesystem
step (a local code folder, a local entry script) comes last.
"""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from hyperpod_launcher import backends, stacks
from hyperpod_launcher.config import cluster_keys, instances, schema, time_limit
from hyperpod_launcher.config.instances import InstanceType
from hyperpod_launcher.config.rules import Count
from hyperpod_launcher.config.validate import check_section, check_value, typed
from hyperpod_launcher.spec import code_source as git_location
from hyperpod_launcher.spec import env as job_env
from hyperpod_launcher.spec import image_ref, instance_choice, local_inputs, recipe_checks, required
from hyperpod_launcher.spec.job import (
    CodeSource,
    Entry,
    JobSpec,
    LaunchOptions,
    Secrets,
    launch_folder,
)
from hyperpod_launcher.spec.mounts import Mount, recipe_mounts
from hyperpod_launcher.spec.mounts import check_sources as check_mount_sources
from hyperpod_launcher.spec.mounts import parse as parse_mount
from hyperpod_launcher.spec.values import (
    SAFE_NAME,
    split_env,
)
from hyperpod_launcher.spec.watch_env import watch_env
from hyperpod_launcher.stacks import deepspeed_config as ds_config
from hyperpod_launcher.stacks import training_code
from hyperpod_launcher.stacks.resume import Resume
from hyperpod_launcher.util import lazy, resources, yaml_text
from hyperpod_launcher.util.dotted import get as _get
from hyperpod_launcher.util.errors import UserError, did_you_mean
from hyperpod_launcher.util.masking import RECIPE_SECRETS

CPU_PROCESSES = "cpu_processes"  # processes per node where the job has no accelerator
# A run name becomes a folder, a Slurm job name and (on k8s) part of object names.
DEFAULT_FAMILY_BY_MODEL_TYPE = {
    "llama_v3": "llama",
    "llama_v4": "llama",
    "mistral": "mistral",
    "mixtral": "mixtral",
    "falcon": "custom_model",
    "hf": "custom_model",
}


def backend_of(cluster_choice: str | None, cluster_type: str | None) -> str:
    """`cluster=` selects the backend; `cluster_type`, when given, must agree with it."""
    known = backends.names()
    if cluster_choice not in known:
        raise UserError(
            f"cluster={cluster_choice}: unknown cluster"
            f"{did_you_mean(str(cluster_choice), known)}; allowed: {', '.join(known)}"
        )
    if cluster_type is not None and cluster_type != cluster_choice:
        raise UserError(
            f"cluster_type={cluster_type} contradicts cluster={cluster_choice}; "
            "cluster= alone selects the backend, so drop cluster_type or set it to "
            f"{cluster_choice}"
        )
    return cluster_choice


def _given(overrides: tuple[str, ...], key: str) -> bool:
    return any(o.lstrip("+~").partition("=")[0] == key for o in overrides)


def cluster_origin(backend: str, recipe_choice: str | None, overrides: tuple[str, ...]) -> str:
    """Why this backend: the command line, the config default, or the recipe's own default
    (the built-in smoke test selects cluster=local in its defaults list)."""
    if _given(overrides, "cluster"):
        return f"cluster={backend}: command line"
    if backend == schema.DEFAULT_CLUSTER:
        return f"cluster={backend}: default"
    if recipe_choice is None:  # a config of its own (--config-name) chose it
        return f"cluster={backend}: default of the config"
    return f"cluster={backend}: default of recipes={recipe_choice}"


def _procs_per_node(explicit: Any, key: str, instance: InstanceType | None, exact: bool) -> int:
    """Processes per node: explicit, or one per device. Recipes must use every device; a
    custom script may start fewer processes (one process can drive several devices)."""
    if explicit is None:
        return instance.processes_per_node if instance else 1
    count = check_value(explicit, Count, key)
    too_many = count > (instance.processes_per_node if instance else count)
    if instance is not None and (too_many or (exact and count != instance.processes_per_node)):
        unit = "NeuronCores" if instance.accelerator == "neuron" else "devices"
        raise UserError(
            f"{key}={count} does not match instance_type={instance.name}, which has "
            f"{instance.processes_per_node} {unit} per node"
        )
    return count


def _script_args(items: list[Any]) -> tuple[str, ...]:
    """HyperPod custom-script args: a list of {flag: value} maps (or plain strings)."""
    args: list[str] = []
    for item in items:
        if isinstance(item, dict):
            for flag, value in item.items():
                args.append(str(flag))
                if value is not None:
                    args.append(str(value))
        else:
            args.append(str(item))
    return tuple(args)


def _recipe_family(recipe: str | None, model_type: str | None) -> str | None:
    parts = (recipe or "").split("/")
    if len(parts) >= 3 and parts[0] in ("training", "fine-tuning"):
        return parts[1]
    return DEFAULT_FAMILY_BY_MODEL_TYPE.get(str(model_type))


def strip_recipe_secrets(recipe: dict[str, Any]) -> dict[str, str]:
    """Replace secret values in the recipe by env references; return {env name: value}."""
    found: dict[str, str] = {}
    for path, env_name in RECIPE_SECRETS.items():
        parent = _get(recipe, ".".join(path[:-1]))
        if isinstance(parent, dict) and parent.get(path[-1]) is not None:
            found[env_name] = str(parent[path[-1]])
            parent[path[-1]] = "${oc.env:" + env_name + ",null}"
    return found


def added_keys(overrides: tuple[str, ...]) -> frozenset[str]:
    """Keys the command line adds on purpose (`+key=value`, `++key=value`)."""
    return frozenset(o.lstrip("+").split("=", 1)[0] for o in overrides if o.startswith("+"))


@dataclass(frozen=True)
class _Launch:
    """What both modes share: the checked launcher settings of this launch."""

    cfg: Mapping[str, Any]
    backend: str
    opts: Mapping[str, Any]
    results_root: str
    git: Mapping[str, Any]
    recipe_choice: str | None
    launch_id: str
    overrides: tuple[str, ...]
    this_machine: bool = True  # a launch from here (the catalog renders for any machine)


@dataclass(frozen=True)
class _Run:
    """The run's name, size and time limit, read from the mode's own section."""

    name: str
    nodes: int
    procs_key: str
    explicit_procs: Any
    time_limit: str | None


@dataclass(frozen=True)
class _Machine:
    instance_type: str | None
    instance: InstanceType | None
    procs: int
    accelerator: instances.Accelerator
    origins: tuple[str | None, ...]  # the instance type's origin, this machine's GPUs


@dataclass(frozen=True)
class _ModeJob:
    """What one mode's builder adds to the shared part."""

    mode: Literal["recipe", "custom"]
    machine: _Machine
    entry: Entry
    code: CodeSource
    stack: str | None = None
    secret_env: Mapping[str, str] = field(default_factory=dict)
    recipe_file: str | None = None
    recipe_yaml: str | None = None
    exp_dir: str | None = None
    resume: Resume | None = None
    code_package: str | None = None
    neuron_compile: bool = False
    config_files: tuple[tuple[str, str], ...] = ()
    data_mounts: tuple[Mount, ...] = ()
    host_script: str | None = None  # an entry script of this host, checked by _on_this_host
    missing: tuple[str, ...] = ()  # required values it lacks (required.py)
    warnings: tuple[str, ...] = ()


def _check_launch(
    cfg: dict[str, Any],
    cluster_choice: str | None,
    recipe_choice: str | None,
    launch_id: str,
    overrides: tuple[str, ...],
) -> _Launch:
    check_section({k: v for k, v in cfg.items() if k != "hydra"}, schema.LauncherConfig, "")
    backend = backend_of(cluster_choice, cfg.get("cluster_type"))
    opts = cfg.get("cluster") or {}
    for key in opts:
        advice = cluster_keys.wrong_backend(f"cluster.{key}", backend)
        if advice:
            raise UserError(advice)
    check_section(opts, backends.options_schema(backend), "cluster", schema.MOVED_KEYS)
    base = cfg.get("base_results_dir")
    if not base:
        raise UserError(
            "base_results_dir is not set; give a folder every node can see, "
            "e.g. base_results_dir=/fsx/results"
        )
    return _Launch(
        cfg=cfg,
        backend=backend,
        opts=opts,
        results_root=os.path.abspath(os.path.expanduser(str(base))),
        git=cfg.get("git") or {},
        recipe_choice=recipe_choice,
        launch_id=launch_id,
        overrides=overrides,
    )


def _check_writable(job_dir: str) -> None:
    """The job folder can be made: the nearest part of its path that exists is a folder this
    user can write to (checked without writing anything)."""
    path = Path(job_dir)
    while not os.path.lexists(path) and path != path.parent:
        path = path.parent
    if not path.is_dir():
        what = "a broken link" if path.is_symlink() and not path.exists() else "not a folder"
        raise UserError(
            f"base_results_dir: {str(path)!r} is {what}; the job folder {job_dir!r} "
            "needs a folder there"
        )
    if not os.access(path, os.W_OK | os.X_OK):
        raise UserError(
            f"base_results_dir: {str(path)!r} is read-only for this user; the job folder "
            f"{job_dir!r} cannot be written there (choose another base_results_dir)"
        )


def _check_one_mode(recipe: Any, custom: Any) -> None:
    if custom is not None and recipe:
        raise UserError(
            "both a recipe and training_cfg are set; choose recipes=<name> or custom-script "
            "mode (training_cfg.*), not both"
        )
    if custom is None and not recipe:
        raise UserError(
            "no recipe selected: set recipes=<name> (see `hyperpod-launch recipes list`)"
        )


def _run(
    name: tuple[str, Any],
    nodes: tuple[str, Any],
    procs: tuple[str, Any],
    limit: tuple[str, Any],
) -> _Run:
    """Each argument is (key, value) as the mode's section spells it."""
    node_count = check_value(nodes[1], Count, nodes[0])
    normalized_limit = time_limit.normalize(limit[1], limit[0])
    if not isinstance(name[1], str) or not SAFE_NAME.match(name[1]):
        raise UserError(
            f"{name[0]}={name[1]!r} is not a safe job name: use letters, digits, '.', '_' or '-', "
            "starting with a letter or digit, at most 120 characters"
        )
    return _Run(name[1], node_count, procs[0], procs[1], normalized_limit)


def _recipe_run(recipe: dict[str, Any]) -> _Run:
    return _run(
        ("recipes.run.name", _get(recipe, "run.name")),
        ("recipes.trainer.num_nodes", _get(recipe, "trainer.num_nodes")),
        ("recipes.trainer.devices", _get(recipe, "trainer.devices")),
        ("recipes.run.time_limit", _get(recipe, "run.time_limit")),
    )


def name_from_entry(script: str | None, module: str | None) -> str:
    """A custom script's default run name: its file (or module) name, as a DNS-safe label
    (`train_llm.py` -> `train-llm`)."""
    stem = str(module).rpartition(".")[2] if module else Path(script or "").stem
    label = re.sub(r"[^a-z0-9]+", "-", stem.lower()).strip("-")[:63].strip("-")
    return label if label and label[0].isalpha() else f"job-{label}" if label else "custom-script"


def _custom_run(custom: dict[str, Any], module: str | None) -> _Run:
    name = _get(custom, "run.name")
    if name is None:
        name = name_from_entry(custom.get("entry_script"), module)
    return _run(
        ("training_cfg.run.name", name),
        ("training_cfg.run.nodes", _get(custom, "run.nodes", 1)),
        ("training_cfg.run.ntasks_per_node", _get(custom, "run.ntasks_per_node")),
        ("training_cfg.run.time_limit", _get(custom, "run.time_limit")),
    )


def _local_gpus(backend: str) -> int | None:
    """Where the job runs on this machine (cluster=local), its GPU count; elsewhere None."""
    if not backends.runs_here(backend):
        return None
    from hyperpod_launcher.spec import local_gpus

    return local_gpus.count()


def _machine(
    chosen: instance_choice.InstanceChoice,
    instance: InstanceType | None,
    procs: int,
    gpus: int | None,
) -> _Machine:
    accelerator = instance.accelerator if instance else chosen.plain_accelerator
    machine = None
    if gpus is not None:
        accelerator = "gpu" if gpus else "cpu"
        machine = f"this machine: {gpus} GPU(s)" if gpus else "this machine: no GPU (gloo)"
    return _Machine(chosen.instance_type, instance, procs, accelerator, (chosen.origin, machine))


def _instance(launch: _Launch, chosen: instance_choice.InstanceChoice) -> InstanceType | None:
    """The catalog's facts for the chosen type; `instance_devices` describes a type it lacks."""
    devices = launch.cfg.get(instances.DEVICES_KEY)
    if devices is not None and not isinstance(devices, str):
        raise UserError(f"{instances.DEVICES_KEY}={devices!r}: expected {instances.DEVICES_HELP}")
    if not chosen.instance_type:
        if devices:
            raise UserError(
                f"{instances.DEVICES_KEY}={devices} describes an instance type the launcher "
                "does not know; set instance_type=<that type> with it"
            )
        return None
    return instances.require(chosen.instance_type, devices)


def _cpu_processes(launch: _Launch) -> int | None:
    return launch.cfg.get(CPU_PROCESSES)  # a Count, checked by the schema


def _recipe_machine(launch: _Launch, recipe: dict[str, Any], run: _Run, stack: str) -> _Machine:
    """Recipes use every device of the instance they are checked against."""
    chosen = instance_choice.choose(launch.cfg.get("instance_type"), recipe, launch.backend)
    instance = _instance(launch, chosen)
    # a Trainium recipe on a GPU instance, fp8 off p5, ...
    force_fp8 = bool(launch.cfg.get("force_fp8"))
    recipe_checks.check_instance(recipe, instance, force_fp8, stack=stack)
    recipe_checks.check_hardware(recipe, chosen.instance_type, instance, launch.backend, stack)
    if instance is not None and instance.accelerator == "cpu":
        raise UserError(
            f"instance_type={chosen.instance_type}: a CPU instance; recipes need a GPU "
            "(p*, g*) or Trainium (trn*) instance; CPU instances run custom scripts only "
            "(training_cfg)"
        )
    procs = _procs_per_node(run.explicit_procs, run.procs_key, instance, exact=True)
    gpus = _local_gpus(launch.backend)
    if gpus and gpus < procs:
        raise UserError(
            f"{run.procs_key}={procs}: cluster=local has {gpus} GPU(s) on this machine; "
            f"set {run.procs_key}={gpus} or fewer"
        )
    if gpus == 0 and launch.this_machine:
        _check_cpu_plan(launch, run, procs)
    return _machine(chosen, instance, procs, gpus)


def _check_cpu_plan(launch: _Launch, run: _Run, procs: int) -> None:
    """cluster=local without GPUs: a recipe's processes would all run on the CPU. One process
    is a CPU run; more only when the user asks for CPU processes."""
    cpu = _cpu_processes(launch)
    if cpu is None and procs > 1:
        raise UserError(
            f"{run.procs_key}={procs}: cluster=local has no GPU on this machine, so each of "
            f"the {procs} processes would run on the CPU; set {run.procs_key}=1, or "
            f"{CPU_PROCESSES}={procs} to run {procs} CPU processes (gloo)"
        )
    if cpu is not None and cpu != procs:
        raise UserError(
            f"{CPU_PROCESSES}={cpu} does not match {run.procs_key}={procs}: a recipe runs "
            f"{run.procs_key} processes; set both to the CPU processes to run"
        )


def _custom_machine(launch: _Launch, run: _Run) -> _Machine:
    """One process per accelerator of the instance (per GPU on cluster=local) unless given;
    a custom script may start fewer (one process can drive several devices). Without an
    accelerator: cpu_processes, else 1."""
    chosen = instance_choice.choose(launch.cfg.get("instance_type"), None, launch.backend)
    instance = _instance(launch, chosen)
    gpus = _local_gpus(launch.backend)
    if run.explicit_procs is not None:
        procs = _procs_per_node(run.explicit_procs, run.procs_key, instance, exact=False)
        if gpus and not _given(launch.overrides, run.procs_key):
            procs = gpus  # the config's count is for CPU processes; the command line wins
    elif instance is not None and instance.processes_per_node:
        procs = instance.processes_per_node
    elif gpus:
        procs = gpus
    else:
        procs = _cpu_processes(launch) or 1
    return _machine(chosen, instance, procs, gpus)


def _recipe_entry(
    launch: _Launch,
    recipe: dict[str, Any],
    code: CodeSource,
    config_args: tuple[str, ...],
    default: str,
) -> Entry:
    """git.entry_script/entry_module win; then the script the recipe names
    (run.entry_script); then the stack's script for the model family (`Stack.entry`)."""
    module = launch.git.get("entry_module")
    script = launch.git.get("entry_script") or (
        None if module else _get(recipe, "run.entry_script")
    )
    if not module and not script:
        family = _recipe_family(launch.recipe_choice, _get(recipe, "model.model_type"))
        if family is None:
            raise UserError(
                f"recipes={launch.recipe_choice}: cannot tell the model family for the entry "
                "script; set git.entry_script or git.entry_module"
            )
        script = default.format(family=family)
    if not code.location and script and not os.path.isabs(script):
        raise UserError(
            "git.repo_url_or_path is not set, so the recipe's entry script "
            f"{script!r} has no code to come from; set git.repo_url_or_path"
        )
    return Entry(None if module else script, module, config_args)


def _recipe_job(
    launch: _Launch,
    recipe: dict[str, Any],
    stack: str,
    run: _Run,
    code: CodeSource,
    launch_dir: str,
) -> _ModeJob:
    own = stacks.get(stack)
    machine = _recipe_machine(launch, recipe, run, stack)
    # parallel math, batch sizes, sequence length, fine-tuning, data
    recipe_checks.check(recipe, nodes=run.nodes, devices=machine.procs, stack=stack)
    missing = required.problems(recipe, stack, launch.recipe_choice, launch.backend)
    missing += required.container_problems(stack, launch.cfg.get("container"), launch.recipe_choice)
    if backends.runs_here(launch.backend) and launch.this_machine:
        local_inputs.check(recipe)
    recipe = copy.deepcopy(recipe)  # secrets are replaced next; the caller's dict stays
    secret_env = strip_recipe_secrets(recipe)
    recipe_file = f"{run.name}_hydra.yaml"
    pin = training_code.pin_of(recipe, own.package)
    code_package = None
    if pin is not None and pin.is_repo(code.location):
        code_package = pin.package
        if not code.commit and not code.branch:  # the version the recipe was written for
            code = replace(code, commit=pin.commit)
    exp_dir = _get(recipe, "exp_manager.exp_dir")
    resume = own.resume(recipe) if own.resume else None
    device = machine.instance.model if machine.instance else None
    late = time_limit.before_first_checkpoint(
        run.time_limit,
        recipe,
        own.step_facts,
        run.nodes * machine.procs,
        device,
        bool(resume and resume.possible),
    )
    return _ModeJob(
        mode="recipe",
        machine=machine,
        entry=_recipe_entry(
            launch,
            recipe,
            code,
            (f"--config-path={launch_dir}", f"--config-name={recipe_file}"),
            own.entry,
        ),
        code=code,
        stack=stack,
        secret_env=secret_env,
        recipe_file=recipe_file,
        recipe_yaml=yaml_text.dump(recipe),
        exp_dir=str(exp_dir) if exp_dir else None,
        resume=resume,
        code_package=code_package,
        neuron_compile=bool(_get(recipe, "run.compile", 0)),
        config_files=ds_config.files(recipe, run.nodes * machine.procs),
        data_mounts=tuple(recipe_mounts(recipe)),
        missing=tuple(missing),
        warnings=(late,) if late else (),
    )


def _custom_job(launch: _Launch, custom: dict[str, Any], run: _Run, code: CodeSource) -> _ModeJob:
    machine = _custom_machine(launch, run)
    script = custom.get("entry_script")
    module = launch.git.get("entry_module")
    if not script and not module:
        raise UserError("training_cfg.entry_script is not set: name the script to run")
    return _ModeJob(
        mode="custom",
        machine=machine,
        entry=Entry(
            None if module else script, module, _script_args(custom.get("script_args", []))
        ),
        code=code,
        host_script=script if script and not code.location else None,
    )


def _check_local_commit(code: CodeSource) -> None:
    """A commit of a local repository is checked offline, before anything is written."""
    git = shutil.which("git")
    if not code.commit or not code.location or git is None:
        return
    if not (Path(code.location) / ".git").exists():
        return
    probe = subprocess.run(
        [git, "-C", code.location, "cat-file", "-e", f"{code.commit}^{{commit}}"],
        capture_output=True,
        check=False,
        env={**os.environ, "GIT_TERMINAL_PROMPT": "0"},
    )
    if probe.returncode != 0:
        raise UserError(
            f"git.commit={code.commit}: no such commit in the local repository "
            f"{code.location!r}; give a commit, tag or branch of it"
        )


def _on_this_host(job: _ModeJob) -> _ModeJob:
    """The filesystem step: a local code folder and a local entry script must exist (both
    become absolute paths), and a script of this host is mounted with its folder."""
    code, entry = job.code, job.entry
    if code.location and not git_location.is_remote(code.location):
        path = Path(code.location).expanduser()
        if not path.exists():
            raise UserError(
                f"git.repo_url_or_path: local path {code.location!r} does not exist; "
                "give an existing directory or a git URL"
            )
        code = replace(code, location=str(path.resolve()))
        _check_local_commit(code)
    if job.host_script:
        path = Path(job.host_script).expanduser()
        if not path.is_file():
            raise UserError(f"training_cfg.entry_script: {job.host_script!r} does not exist")
        if entry.script:
            entry = replace(entry, script=str(path.resolve()))
    mounts = job.data_mounts
    script = entry.script
    if script and os.path.isfile(script) and not resources.is_example(script):
        folder = os.path.dirname(script)
        mounts = (*mounts, Mount(folder, folder, "ro"))
    return replace(job, code=code, entry=entry, data_mounts=mounts)


def build(
    cfg: dict[str, Any],
    *,
    cluster_choice: str | None,
    recipe_choice: str | None,
    launch_id: str,
    overrides: tuple[str, ...] = (),
    this_machine: bool = True,
) -> tuple[JobSpec, Secrets]:
    """Validate the resolved config and build the JobSpec. Raises UserError on bad input.
    `this_machine=False` (the catalog's renders) skips what only a launch from this machine
    checks: its GPUs against a cluster=local plan, and the local job's input paths.

    The shared part checks the launcher settings; one builder per mode (recipe or custom
    script) reads its own section; the filesystem step comes last."""
    launch = _check_launch(cfg, cluster_choice, recipe_choice, launch_id, overrides)
    launch = replace(launch, this_machine=this_machine)
    recipe, custom = cfg.get("recipes"), cfg.get("training_cfg")
    _check_one_mode(recipe, custom)
    stack = None if recipe is None else stacks.of(recipe)  # decided once, carried on the spec
    if custom is None:  # keys, types and value rules of the recipe's stack
        assert recipe is not None and stack is not None  # no training_cfg means a recipe
        own = stacks.get(stack)
        if own.own_job:  # e.g. AWS's images: a job of services, no code or entry of ours
            origin = cluster_origin(launch.backend, recipe_choice, overrides)
            return lazy.load(own.own_job)(launch, recipe, added_keys(overrides), origin)
        check_section(recipe, own.recipe_schema(), "recipes", added=added_keys(overrides))
        run = _recipe_run(recipe)
    else:
        run = _custom_run(custom, launch.git.get("entry_module"))
    job_dir = os.path.join(launch.results_root, run.name)
    _check_writable(job_dir)
    mounts = [
        parse_mount(m, "container_mounts")
        for m in [*cfg.get("container_mounts", []), *launch.opts.get("container_mounts", [])]
        if m is not None
    ]
    code = git_location.code_source(launch.git, job_dir, launch_id)
    if launch.git.get("token") and code.location and not git_location.is_remote(code.location):
        raise UserError("git.token is set but git.repo_url_or_path is a local path; drop the token")
    if custom is None:
        assert recipe is not None and stack is not None
        job = _recipe_job(launch, recipe, stack, run, code, launch_folder(job_dir, launch_id))
    else:
        job = _custom_job(launch, custom, run, code)
    job = _on_this_host(job)
    spec, secrets = _assemble(launch, run, job, job_dir, mounts)
    local_code = spec.code.location if spec.code.is_local else None
    check_mount_sources(
        [
            ("base_results_dir", spec.results_root),
            ("recipes.exp_manager.exp_dir", spec.exp_dir),
            ("git.repo_url_or_path", local_code),
        ]
    )
    return spec, secrets


def launch_options(
    cfg: Mapping[str, Any], overrides: tuple[str, ...], spec: JobSpec, secrets: Secrets
) -> LaunchOptions:
    """How this launch runs (the config's top-level flags, checked by `build`), not what the
    job is; flags that cannot both hold are one line naming both."""
    options = LaunchOptions(
        dry_run=bool(cfg.get("dry_run")),
        wait=cfg.get("wait"),
        allow_concurrent=bool(cfg.get("allow_concurrent")),
        overrides=tuple(secrets.mask(o) for o in overrides),
    )
    _check_flags(spec, options)
    return options


def _check_flags(spec: JobSpec, options: LaunchOptions) -> None:
    if not options.dry_run:
        return
    if options.wait:
        raise UserError(
            "dry_run=true and wait=true (or --wait) conflict: a dry run submits no job to "
            "wait for; drop one of them"
        )
    flag = backends.get(spec.backend).writes_only_flag(spec)
    if flag:
        raise UserError(
            f"dry_run=true and {flag} conflict: the dry run writes the files without the code "
            f"checkout, {flag.partition('=')[0]} writes them with it; drop one of them"
        )


def _assemble(
    launch: _Launch, run: _Run, job: _ModeJob, job_dir: str, mounts: list[Mount]
) -> tuple[JobSpec, Secrets]:
    machine = job.machine
    facts = job_env.JobFacts(machine.accelerator, machine.instance, run.nodes, job.stack)
    shared_env = {
        **job_env.default_env(facts),
        **required.cache_env(launch.backend, launch.cfg),
        **watch_env(launch.cfg.get("watch")),
    }
    env, secret_env = split_env(launch.cfg.get("env_vars") or {}, shared_env)
    secret_env.update(job.secret_env)
    secrets = Secrets(env=secret_env, git_token=launch.git.get("token"))
    cfg = launch.cfg
    cluster = cluster_origin(launch.backend, launch.recipe_choice, launch.overrides)
    spec = JobSpec(
        name=run.name,
        launch_id=launch.launch_id,
        backend=launch.backend,
        mode=job.mode,
        recipe=launch.recipe_choice,
        nodes=run.nodes,
        procs_per_node=machine.procs,
        accelerator=machine.accelerator,
        instance_type=instances.normalize(machine.instance_type) if machine.instance_type else None,
        instance=machine.instance,
        image=image_ref.check(str(cfg["container"])) if cfg.get("container") else None,
        mounts=tuple(mounts),
        env=tuple(env.items()),
        secret_env=tuple(sorted(secret_env)),
        entry=job.entry,
        code=job.code,
        workdir=job.code.checkout_dir or job_dir,
        job_dir=job_dir,
        results_root=launch.results_root,
        exp_dir=job.exp_dir,
        recipe_file=job.recipe_file,
        recipe_yaml=job.recipe_yaml,
        time_limit=run.time_limit,
        neuron_compile=job.neuron_compile,
        opts=typed(launch.opts, backends.options_schema(launch.backend)),
        max_restarts=cfg.get("max_restarts", 0),  # checked by the schema
        resume=job.resume,
        stack=job.stack,
        config_files=job.config_files,
        open_files=job_env.open_files_limit(facts),
        origins=tuple(o for o in (cluster, *machine.origins) if o),
        data_mounts=job.data_mounts,
        code_package=job.code_package,
        missing=job.missing,
        warnings=job.warnings,
    )
    return spec, secrets
