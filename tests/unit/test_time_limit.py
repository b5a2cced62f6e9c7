"""run.time_limit: one parser for every backend (sbatch's forms, in seconds for the others)."""

from __future__ import annotations

import pytest

from hyperpod_launcher.errors import UserError
from hyperpod_launcher.time_limit import normalize, time_limit_seconds

SECONDS = {
    "90": 90 * 60,  # minutes
    "1:30": 90,  # minutes:seconds
    "04:00:00": 4 * 3600,  # hours:minutes:seconds
    "3-": 3 * 86400,  # days-
    "2-00": 2 * 86400,  # days-hours
    "1-12": 86400 + 12 * 3600,
    "1-12:30": 86400 + 12 * 3600 + 30 * 60,  # days-hours:minutes
    "2-00:00:05": 2 * 86400 + 5,  # days-hours:minutes:seconds
    90: 90 * 60,  # YAML integers are minutes too
}
NO_LIMIT = (None, 0, "0", "UNLIMITED", "unlimited", "Infinite")
REJECTED = ("forever", "1:2:3:4", "-1", "1.5", "", "1h", "-2", True, 1.5)


@pytest.mark.parametrize("value", SECONDS)
def test_every_sbatch_form_converts_to_seconds(value: object) -> None:
    assert time_limit_seconds(value) == SECONDS[value]


@pytest.mark.parametrize("value", NO_LIMIT)
def test_unset_zero_and_unlimited_mean_no_limit(value: object) -> None:
    assert time_limit_seconds(value) is None


def test_unlimited_is_passed_to_sbatch_in_one_spelling() -> None:
    assert normalize("infinite", "k") == normalize("UNLIMITED", "k") == "UNLIMITED"
    assert normalize(" 04:00:00 ", "k") == "04:00:00"


@pytest.mark.parametrize("value", REJECTED)
def test_other_forms_are_one_line_naming_key_value_and_forms(value: object) -> None:
    with pytest.raises(UserError) as err:
        normalize(value, "recipes.run.time_limit")
    message = str(err.value)
    assert message.startswith(f"recipes.run.time_limit={value!r}: expected a time limit")
    assert "D-H:M:S" in message and "UNLIMITED" in message and "\n" not in message
