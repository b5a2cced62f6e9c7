"""Preflight: check a composed job against the live cluster before anything is queued.

Each backend that can be asked names a checks module (its `preflight_checks` attribute, a
"module" path next to the backend); the module's `checks(plan)` returns Check objects.
Cheap checks are local (no network, no subprocess that asks a server) and run before every
launch; the others run with `hyperpod-launch preflight <overrides>` or `preflight=true`,
each bounded by its own timeout. One line per check: ok / warn / fail, with the fix.
"""

from __future__ import annotations

import importlib
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hyperpod_launcher.util.errors import BackendError, UserError

if TYPE_CHECKING:
    from hyperpod_launcher.launch.execute import Plan

OK, WARN, FAIL = "ok", "warn", "fail"
DEFAULT_TIMEOUT = 20.0  # seconds per remote check


@dataclass(frozen=True)
class Result:
    status: str
    message: str
    fix: str = ""

    def line(self, name: str) -> str:
        text = f"{self.status:<4} {name}: {self.message}"
        return f"{text}; fix: {self.fix}" if self.fix and self.status != OK else text


def ok(message: str) -> Result:
    return Result(OK, message)


def warn(message: str, fix: str = "") -> Result:
    return Result(WARN, message, fix)


def fail(message: str, fix: str = "") -> Result:
    return Result(FAIL, message, fix)


@dataclass(frozen=True)
class Check:
    name: str
    run: Callable[[], Result]
    cheap: bool = False  # local only: runs before every launch
    timeout: float = DEFAULT_TIMEOUT


def checks_of(plan: Plan) -> list[Check]:
    module = plan.backend.preflight_checks
    if not module:
        return []
    return list(importlib.import_module(module).checks(plan))


def _bounded(check: Check) -> Result:
    """Run one check; past its timeout it fails with a message saying so."""
    box: list[Result] = []

    def target() -> None:
        try:
            box.append(check.run())
        except Exception as err:  # a check that breaks is a failed check, on one line
            first = str(err).strip().splitlines()[0] if str(err).strip() else ""
            box.append(fail(f"could not check: {type(err).__name__}: {first}"))

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join(check.timeout)
    if not box:
        return fail(
            f"no answer within {check.timeout:g} s",
            "check that the cluster is reachable from here, or rerun the preflight",
        )
    return box[0]


def run(plan: Plan, cheap_only: bool, say: Callable[[str], None] = print) -> bool:
    """Run the checks, one line each; False when any failed. A required value the job lacks
    (required.py) is a failed check too (a launch refuses it before its preflight)."""
    passed = not plan.spec.missing
    for line in plan.spec.missing:
        say(fail(line).line("required value"))
    for check in checks_of(plan):
        if cheap_only and not check.cheap:
            continue
        result = _bounded(check)
        if result.status == FAIL:
            passed = False
        if not cheap_only or result.status == FAIL:  # a launch shows only what stops it
            say(result.line(check.name))
    return passed


def mode(value: object) -> str:
    """The `preflight` config key: null (cheap checks), true (all) or false (none)."""
    if value is None:
        return "cheap"
    if value is True:
        return "all"
    if value is False:
        return "off"
    raise UserError(f"preflight={value!r}: expected true, false or null (the cheap checks)")


def before_launch(plan: Plan, value: object) -> None:
    """The launch's preflight: raise PreflightFailed when a check failed."""
    how = mode(value)
    if how == "off" or (how == "cheap" and plan.submit_only_files):
        return  # a dry run submits nothing: it is the check
    cheap = how == "cheap"  # then only failures show, on stderr beside the error

    def say(line: str) -> None:
        print(line, file=sys.stderr if cheap else sys.stdout, flush=True)

    if not run(plan, cheap_only=cheap, say=say):
        raise PreflightFailed("preflight failed (see the lines above); nothing was submitted")


class PreflightFailed(BackendError):
    """A check failed: exit 1, nothing written or submitted."""
