"""One state vocabulary across backends, with the backend's own word kept for display."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from hyperpod_launcher.jobs.failures import Failure, first_failure

PENDING, RUNNING, SUCCEEDED, FAILED, CANCELLED, UNKNOWN = (
    "pending",
    "running",
    "succeeded",
    "failed",
    "cancelled",
    "unknown",
)
TERMINAL = frozenset({SUCCEEDED, FAILED, CANCELLED})


@dataclass(frozen=True)
class JobStatus:
    state: str
    backend_state: str
    exit_code: int | None = None
    detail: str = ""
    failure: Failure | None = None  # the first failed rank, when the logs name it
    warning: str = ""  # why the backend could not be asked (`jobs` shows each one once)

    @property
    def finished(self) -> bool:
        return self.state in TERMINAL

    def with_cause(self, logs: Iterable[Path]) -> JobStatus:
        """A failed job's status with the first failed rank that its torchrun logs name."""
        if self.state != FAILED:
            return self
        failure = first_failure(logs)
        if failure is None:
            return self
        return replace(self, exit_code=failure.exit_code, failure=failure)

    def describe(self) -> str:
        text = f"{self.state} ({self.backend_state})"
        if self.failure is not None:
            return f"{text}: {self.failure.describe()}"
        if self.exit_code is not None:
            text += f", exit code {self.exit_code}"
        return f"{text}; {self.detail}" if self.detail else text

    def short(self) -> str:
        """One table cell: the state, and where a failure started."""
        text = f"{self.state} ({self.backend_state})"
        return f"{text} {self.failure.short()}" if self.failure is not None else text

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobStatus:
        failure = data.get("failure")
        return cls(**{**data, "failure": Failure(**failure) if failure else None})

    def as_dict(self) -> dict[str, object]:
        data = dict(self.__dict__)
        data["failure"] = None if self.failure is None else dict(self.failure.__dict__)
        return data
