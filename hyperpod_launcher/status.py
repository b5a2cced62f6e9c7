"""One state vocabulary across backends, with the backend's own word kept for display."""

from __future__ import annotations

from dataclasses import dataclass

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

    @property
    def finished(self) -> bool:
        return self.state in TERMINAL

    def describe(self) -> str:
        text = f"{self.state} ({self.backend_state})"
        if self.exit_code is not None:
            text += f", exit code {self.exit_code}"
        return f"{text}; {self.detail}" if self.detail else text
