"""The backend protocol: a pure render, then a submit that is the only side effect."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Protocol

from hyperpod_launcher import __version__, templating
from hyperpod_launcher.job import JobSpec, Secrets


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


def train_script(spec: JobSpec) -> RenderedFile:
    """The per-node script every backend runs (one template, no backend-specific copy)."""
    text = templating.render(
        "common/train_script.sh.j2", spec=spec, entry=entry_argv(spec), version=__version__
    )
    return RenderedFile(text, 0o755)


TRAIN_SCRIPT = "train_script.sh"
