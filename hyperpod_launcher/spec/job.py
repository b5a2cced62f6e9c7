"""JobSpec: the backend-neutral job (built from the composed config by `spec.build`).

Backends read only the JobSpec (never the raw Hydra config); how this one launch runs (a dry
run, waiting for the job) travels beside it as `LaunchOptions`. Secret values are kept apart in
`Secrets`, which reaches the submit step alone and is never rendered into a file.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from hyperpod_launcher.spec.mounts import Mount
from hyperpod_launcher.util.masking import MASK

if TYPE_CHECKING:
    from hyperpod_launcher.config.instances import Accelerator, InstanceType
    from hyperpod_launcher.stacks.resume import Resume

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class CodeSource:
    """Where the job's code comes from; checked out once per launch into `checkout_dir`."""

    location: str | None = None  # git URL or absolute local path; None: nothing to fetch
    branch: str | None = None
    commit: str | None = None
    checkout_dir: str | None = None

    @property
    def is_local(self) -> bool:
        return self.location is not None and os.path.isabs(self.location)


@dataclass(frozen=True)
class Entry:
    """What torchrun runs on every node: a script (relative to the workdir) or a module."""

    script: str | None
    module: str | None
    args: tuple[str, ...] = ()


@dataclass(frozen=True)
class Secrets:
    """Secret values: passed to the submit step only, never written or printed."""

    env: Mapping[str, str] = field(default_factory=dict)
    git_token: str | None = None

    def __repr__(self) -> str:
        env = {name: MASK for name in self.env}
        token = None if self.git_token is None else MASK
        return f"Secrets(env={env!r}, git_token={token!r})"

    def values(self) -> list[str]:
        return [v for v in (*self.env.values(), self.git_token) if v]

    def mask(self, text: str) -> str:
        for value in sorted(self.values(), key=len, reverse=True):
            text = text.replace(value, MASK)
        return text


@dataclass(frozen=True)
class JobSpec:
    name: str
    launch_id: str
    backend: str
    mode: Literal["recipe", "custom"]
    recipe: str | None  # the recipes= choice, for records
    nodes: int
    procs_per_node: int
    accelerator: Accelerator
    instance_type: str | None
    instance: InstanceType | None
    image: str | None
    mounts: tuple[Mount, ...]
    env: tuple[tuple[str, str], ...]
    secret_env: tuple[str, ...]  # names exported to the job from the submit environment
    entry: Entry
    code: CodeSource
    workdir: str
    job_dir: str
    results_root: str
    exp_dir: str | None
    recipe_file: str | None
    recipe_yaml: str | None
    time_limit: str | None
    neuron_compile: bool
    opts: Any  # the cluster section as an instance of the backend's options class
    # Files the job reads next to its recipe, e.g. DeepSpeed's ds_config.json: ((name, text),).
    # Written into the job folder; backends without a shared filesystem ship them with the recipe.
    config_files: tuple[tuple[str, str], ...] = ()
    max_restarts: int = 0
    resume: Resume | None = None  # how a restarted recipe job resumes (its Stack.resume)
    stack: str | None = None  # the training stack (the stacks registry), decided once
    open_files: int | None = None  # `ulimit -n` on every node (job_env.OPEN_FILES)
    # Why the backend (and instance type) are what they are, for the summary line:
    # e.g. ("cluster=slurm: default",).
    origins: tuple[str, ...] = ()
    # Paths the recipe (or a local entry script) names on this host, for container mounts.
    data_mounts: tuple[Mount, ...] = ()
    # The training code's package in the checkout (its Stack.package), ahead of the image's.
    code_package: str | None = None
    missing: tuple[str, ...] = ()  # required values it lacks (required.py), one line each
    # An Amazon Nova recipe's services (nova.NovaJob): AWS's images run them, not our entry.
    nova: Any = None
    warnings: tuple[str, ...] = ()  # what the launch prints as `warning: <line>`

    @property
    def launch_dir(self) -> str:
        """This launch's own folder: every file its job reads, so no later launch of the name
        changes what this job runs."""
        return launch_folder(self.job_dir, self.launch_id)

    @property
    def recipe_sha256(self) -> str | None:
        if self.recipe_yaml is None:
            return None
        import hashlib

        return hashlib.sha256(self.recipe_yaml.encode()).hexdigest()


@dataclass(frozen=True)
class LaunchOptions:
    """How this launch runs, not what the job is: passed beside the JobSpec to the launch and
    to whatever needs it (render reads `wait`)."""

    dry_run: bool = False  # write the job folder and print the request; submit nothing
    wait: bool | None = None  # follow the job until it ends; None: the backend's default
    allow_concurrent: bool = False  # launch while an earlier launch of the name is active
    overrides: tuple[str, ...] = ()  # the command line's overrides, secrets masked (the record)


LAUNCHES = "launches"


def launch_folder(job_dir: str, launch_id: str) -> str:
    return os.path.join(job_dir, LAUNCHES, launch_id)


def relocate(spec: JobSpec, job_dir: str, checkout_dir: str | None = None) -> JobSpec:
    """The same job as seen from inside a pod or container that mounts the job folder at
    `job_dir` and the code at `checkout_dir` (backends without a shared filesystem): the
    launch's files are in `job_dir` there."""
    code = replace(spec.code, checkout_dir=checkout_dir or spec.code.checkout_dir)
    old_config_arg = f"--config-path={spec.launch_dir}"
    args = tuple(f"--config-path={job_dir}" if a == old_config_arg else a for a in spec.entry.args)
    return replace(
        spec,
        job_dir=job_dir,
        code=code,
        workdir=code.checkout_dir or job_dir,
        entry=replace(spec.entry, args=args),
    )
