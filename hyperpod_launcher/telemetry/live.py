"""The progress line `--wait` shows while it follows a job: redrawn in place on a terminal,
one plain line per logging step otherwise; and the summary at the end."""

from __future__ import annotations

import sys
from typing import Any, TextIO

from hyperpod_launcher.jobs.records import JobRecord
from hyperpod_launcher.telemetry import progress
from hyperpod_launcher.telemetry.node_watch import parse_line


class ProgressLine:
    def __init__(self, record: JobRecord, out: TextIO = sys.stderr) -> None:
        self.record = record
        self.out = out
        self.tty = out.isatty()
        self.found: list[dict[str, Any]] = []
        self.shown = False

    def seen(self, line: str) -> None:
        """Take one log line; redraw (or print) the progress line when it is a metrics line."""
        found = parse_line(line)
        if found is None:
            return
        self.found.append(found)
        if found.get("event", "step") != "step":
            return
        text = "progress: " + progress.line(self.figures(finished=False))
        if self.tty:
            self.out.write(f"\r\x1b[K{text}")
            self.shown = True
        else:
            self.out.write(text + "\n")
        self.out.flush()

    def clear(self) -> None:
        """Take the redrawn line away before a log line is printed over it."""
        if self.shown:
            self.out.write("\r\x1b[K")
            self.out.flush()
            self.shown = False

    def figures(self, finished: bool) -> Any:
        return progress.figures_of(self.record, finished, found=self.found)

    def summary(self) -> None:
        """The end of the job; the job folder's metrics file where the backend has one."""
        found = None if progress.in_job_folder(self.record.backend) else self.found
        figures = progress.figures_of(self.record, finished=True, found=found)
        if figures.step is None:  # a job that prints no metrics line (a smoke test)
            return
        print(progress.summary(figures), file=self.out, flush=True)
