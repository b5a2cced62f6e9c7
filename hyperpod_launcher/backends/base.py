"""The backend protocol: a pure render, then a submit that is the only side effect."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from typing import Protocol

from hyperpod_launcher import __version__, templating
from hyperpod_launcher.job import MASK, SECRET_ENV, JobSpec, Secrets


@dataclass(frozen=True)
class RenderedFile:
    text: str
    mode: int = 0o644


@dataclass(frozen=True)
class Rendered:
    """What a backend would submit: the files for the job folder and the submit command."""

    files: dict[str, RenderedFile]
    submit_argv: tuple[str, ...]
    summary: str = ""

    @property
    def submit_command(self) -> str:
        return shlex.join(self.submit_argv)

    def __str__(self) -> str:
        lines = [self.summary] if self.summary else []
        lines.append(f"submit: {self.submit_command}")
        lines += [f"  {oct(f.mode)[2:]} {path}" for path, f in sorted(self.files.items())]
        return redact("\n".join(lines))

    def __repr__(self) -> str:
        files = ", ".join(sorted(self.files))
        return redact(f"Rendered(files=[{files}], submit_argv={self.submit_argv!r})")


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


class Backend(Protocol):
    name: str

    def render(self, spec: JobSpec) -> Rendered: ...

    def submit(self, spec: JobSpec, rendered: Rendered, secrets: Secrets) -> Submitted: ...


def entry_argv(spec: JobSpec) -> list[str]:
    """torchrun's program part: `script args...` or `-m module args...`."""
    head = ["-m", spec.entry.module] if spec.entry.module else [spec.entry.script]
    return [*head, *spec.entry.args]


LAUNCH_COMMANDS = {"torchrun": "torchrun", "hyperpodrun": "exec hyperpodrun"}


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
    )
    return RenderedFile(text, 0o755)


TRAIN_SCRIPT = "train_script.sh"
