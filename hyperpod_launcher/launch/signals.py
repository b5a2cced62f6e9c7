"""A launch and the signals that end a launcher: SIGINT, SIGTERM (a kill) and SIGHUP (a
closed terminal) are treated alike.

While a launch writes its files, submits and records the job, such a signal is held until the
record is written (`held`), so a job is never queued without being on record. While a job runs
in the foreground, the signal interrupts it (`interrupting`) as Ctrl-C does: the job is
stopped and its record says so.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

from hyperpod_launcher.util.errors import LauncherError

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Stopped(LauncherError):
    """The launcher was asked to stop; what it launched is on record."""

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.exit_code = 128 + signum


@contextlib.contextmanager
def _handlers(handler: signal.Handlers | object) -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set handlers; a library caller keeps its own
        return
    previous = {signum: signal.signal(signum, handler) for signum in SIGNALS}  # type: ignore[arg-type]
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


class Held:
    """The first signal that arrived while held, if any."""

    signum: int | None = None

    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum else ""


@contextlib.contextmanager
def held() -> Iterator[Held]:
    """Hold the launcher's stop signals; the caller acts on `Held.signum` afterwards."""
    seen = Held()

    def remember(signum: int, frame: FrameType | None) -> None:
        seen.signum = seen.signum or signum

    with _handlers(remember):
        yield seen


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def interrupting() -> Iterator[None]:
    """SIGTERM and SIGHUP interrupt like SIGINT (KeyboardInterrupt)."""
    with _handlers(_interrupt):
        yield
