"""The backend contract: a validate step, a pure render, a submit that is the only side
effect, and the job commands (status, logs, cancel) a backend implements."""

from __future__ import annotations

import re
import shlex
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from hyperpod_launcher import __version__
from hyperpod_launcher.jobs.records import JobRecord
from hyperpod_launcher.spec.job import JobSpec, LaunchOptions, Secrets
from hyperpod_launcher.util import templating
from hyperpod_launcher.util.masking import MASK, SECRET_ENV

if TYPE_CHECKING:
    from hyperpod_launcher.jobs.status import JobStatus

STATUS, LOGS, CANCEL = "status", "logs", "cancel"


@dataclass(frozen=True)
class RenderedFile:
    text: str
    mode: int = 0o644


@dataclass(frozen=True)
class Request:
    """What a backend submits, as render computed it: the files of the job folder and the
    exact submit command. A backend that sends more (an API request, a Secret) subclasses it
    with those fields and says them in `also_sends`. Its str, secrets masked, is what a dry run
    prints; submit sends exactly this."""

    files: Mapping[str, RenderedFile]
    submit_argv: tuple[str, ...]
    summary: str = ""

    @property
    def submit_command(self) -> str:
        return shlex.join(self.submit_argv)

    def also_sends(self) -> list[str]:
        """What submit sends besides the command, one line each (no secret values)."""
        return []

    @property
    def runs_in_foreground(self) -> bool:
        """submit runs the job itself until it ends (a stop signal then stops the job)."""
        return False

    def __str__(self) -> str:
        files = ", ".join(f"{path} ({oct(f.mode)[2:]})" for path, f in sorted(self.files.items()))
        lines = [f"submit with: {self.submit_command}", *self.also_sends(), f"files: {files}"]
        return redact("\n".join(lines))

    def __repr__(self) -> str:
        files = ", ".join(sorted(self.files))
        name = type(self).__name__
        return redact(f"{name}(files=[{files}], submit_argv={self.submit_argv!r})")


# `NAME=value` or `NAME: value` where NAME looks secret and the value is a literal (not a
# `$NAME` reference): masked in anything a request prints, in case a value slipped through.
_LITERAL_SECRET = re.compile(
    rf"(\b\w*(?:{SECRET_ENV.pattern})['\"]?\s*[=:]\s*['\"]?)(?![$'\"\s])[^\s'\",}}]+", re.I
)


def redact(text: str) -> str:
    return _LITERAL_SECRET.sub(rf"\g<1>{MASK}", text)


@dataclass
class Submitted:
    """The outcome of a submit; `job_id` is the backend's id (Slurm id, pid, ...)."""

    job_id: str | None
    returncode: int = 0
    details: dict[str, object] = field(default_factory=dict)


RequestT = TypeVar("RequestT", bound=Request)


class Backend(ABC, Generic[RequestT]):
    """One backend, generic over its request type. `validate` checks the job's values against
    what the backend takes (one UserError line each); `render`, called only on a validated
    spec, is pure (no network, no SDK import; it reads only the launcher's own templates) and
    returns the request; `submit` sends that request. The job commands it supports are the
    ones it implements (`capabilities`); the CLI asks those, and prints what `logs` yields.
    Its name, options class and catalog settings are its registry entry's
    (`backends/__init__.py`), stated nowhere else."""

    # Set when the job runs the submit host's checkout (which a dry run does not make): how to
    # write the files with the checkout made; "" when there is no such way.
    checkout_hint: ClassVar[str | None] = None
    # The module `preflight` asks about this backend's cluster (see prepare/preflight.py).
    preflight_checks: ClassVar[str | None] = None
    # The job's nodes see its job folder, where the watcher writes the metrics file that
    # `status` and `jobs` read (else they read the metrics lines from the job's logs).
    metrics_in_job_folder: ClassVar[bool] = False

    def validate(self, spec: JobSpec) -> None:
        """Raise UserError (what is wrong, which key, what is allowed) for a value this
        backend cannot take; called before render, which then assumes valid input."""
        return None

    @abstractmethod
    def render(self, spec: JobSpec, launch: LaunchOptions) -> RequestT: ...

    @abstractmethod
    def submit(self, request: RequestT, secrets: Secrets) -> Submitted:
        """Send `request` as it is (the request a dry run prints), with the secrets' values."""

    def check_secrets(self, request: RequestT, secrets: Secrets) -> None:
        """Raise UserError if a secret value breaks a limit of the backend (never showing it);
        called before anything is written. Nothing by default."""
        return None

    def writes_only(self, spec: JobSpec) -> bool:
        """Whether this launch writes its files and submits nothing (besides dry_run=true)."""
        return False

    def check_submit_host(self, spec: JobSpec) -> None:
        """Before anything is written for a launch (not a dry run): what submitting from this
        host needs of its own configuration (no network); raise UserError."""
        return None

    def writes_only_flag(self, spec: JobSpec) -> str | None:
        """The option (as `key=value`) that makes this launch write only, when it is set."""
        return None

    def dry_run(
        self, spec: JobSpec, request: RequestT, jobdir: Any, say: Callable[[str], None]
    ) -> list[str]:
        """What only a dry run adds to the job folder (file names); nothing by default."""
        return []

    @property
    def capabilities(self) -> frozenset[str]:
        """The job commands (of STATUS, LOGS, CANCEL) this backend implements."""
        verbs = (STATUS, LOGS, CANCEL)
        return frozenset(v for v in verbs if getattr(type(self), v) is not getattr(Backend, v))

    def status(self, records: list[JobRecord], detailed: bool = False) -> list[JobStatus]:
        """The states of many jobs in as few queries as the backend allows."""
        raise NotImplementedError(f"{type(self).__name__} does not support status")

    def logs(self, record: JobRecord, follow: bool, rank: int | None) -> Iterator[str]:
        """The job's output lines (only global rank `rank`'s); with `follow`, until it ends."""
        raise NotImplementedError(f"{type(self).__name__} does not support logs")

    def cancel(self, record: JobRecord) -> str:
        """Stop the job; say what was done (a finished job is left alone)."""
        raise NotImplementedError(f"{type(self).__name__} does not support cancel")


def entry_argv(spec: JobSpec) -> list[str]:
    """torchrun's program part: `script args...` or `-m module args...`."""
    head = ["-m", spec.entry.module] if spec.entry.module else [spec.entry.script]
    return [*head, *spec.entry.args]


# `watch` is the telemetry watcher's command prefix (empty where the node has no python3).
LAUNCH_COMMANDS = {
    "torchrun": '${watch[@]+"${watch[@]}"} torchrun',
    "hyperpodrun": 'exec ${watch[@]+"${watch[@]}"} hyperpodrun',
}


def train_script(spec: JobSpec, launcher: str = "torchrun") -> RenderedFile:
    """The per-node script every backend runs (one template, no backend-specific copy).
    `launcher`: torchrun, or hyperpodrun (HyperPod's elastic agent, HyperPodPyTorchJob)."""
    text = templating.render(
        "common/train_script.sh.j2",
        spec=spec,
        entry=entry_argv(spec),
        version=__version__,
        launcher=launcher,
        launch=LAUNCH_COMMANDS[launcher],
        node_watch=node_watch_source(),
        mfu_inputs=watcher_mfu_inputs(spec),
    )
    return RenderedFile(text, 0o755)


def watcher_mfu_inputs(spec: JobSpec) -> str:
    """The recipe's model shape and tokens per step, as the watcher's --mfu-inputs (JSON), for
    the stacks whose progress lines it converts; empty for the others."""
    import json

    from hyperpod_launcher.stacks.train_stack import recipe_of
    from hyperpod_launcher.telemetry.recipe_shape import mfu_inputs

    found = mfu_inputs(recipe_of(spec.recipe_yaml), spec.nodes * spec.procs_per_node)
    return json.dumps(found, separators=(",", ":")) if found else ""


def node_watch_source() -> str:
    """The telemetry watcher, which the per-node script writes out and runs (standard library
    only, so it needs nothing installed in the job's image)."""
    from importlib import resources

    return resources.files("hyperpod_launcher.telemetry").joinpath("node_watch.py").read_text()


TRAIN_SCRIPT = "train_script.sh"
