"""The preflight runner: one line per check, bounded checks, failures as exit status."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest

from hyperpod_launcher.prepare import preflight
from hyperpod_launcher.util.errors import UserError


def test_a_check_past_its_timeout_fails_with_a_clear_message() -> None:
    release = threading.Event()
    hung = preflight.Check("x", lambda: (release.wait(30), preflight.ok("late"))[1], timeout=0.05)
    try:
        result = preflight._bounded(hung)
    finally:
        release.set()
    assert result.status == preflight.FAIL
    assert result.line("k8s nodes") == (
        "fail k8s nodes: no answer within 0.05 s; fix: check that the cluster is reachable "
        "from here, or rerun the preflight"
    )


def test_a_check_that_raises_is_one_failed_line() -> None:
    def broken() -> preflight.Result:
        raise OSError("connection reset\nsecond line")

    result = preflight._bounded(preflight.Check("x", broken))
    assert result.line("s3") == "fail s3: could not check: OSError: connection reset"


NO_PLAN = SimpleNamespace(spec=SimpleNamespace(missing=()))  # the checks below stand in for it


def test_run_reports_every_check_and_fails_on_any_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    checks = [
        preflight.Check("a", lambda: preflight.ok("fine"), cheap=True),
        preflight.Check("b", lambda: preflight.warn("odd", "look")),
        preflight.Check("c", lambda: preflight.fail("broken", "fix it")),
    ]
    monkeypatch.setattr(preflight, "checks_of", lambda plan: checks)
    said: list[str] = []
    assert preflight.run(NO_PLAN, cheap_only=False, say=said.append) is False
    assert said == ["ok   a: fine", "warn b: odd; fix: look", "fail c: broken; fix: fix it"]
    said.clear()
    assert preflight.run(NO_PLAN, cheap_only=True, say=said.append) is True
    assert said == []  # a launch shows only failing cheap checks


def test_mode_of_the_preflight_key() -> None:
    assert [preflight.mode(v) for v in (None, True, False)] == ["cheap", "all", "off"]
    with pytest.raises(UserError, match="preflight='yes'"):
        preflight.mode("yes")
