"""Counts and ranges are one rule each (`config.rules`), stated in a schema type and checked by
`config.validate`, with one message shape: `<key>: expected <what is allowed>, got <value>`."""

from __future__ import annotations

import re

import pytest

from hyperpod_launcher.config.rules import Count, NonNegativeInt
from hyperpod_launcher.config.validate import check_value, problem
from hyperpod_launcher.stacks import deepspeed_config as ds_config
from hyperpod_launcher.stacks import nova
from hyperpod_launcher.util.errors import UserError
from tests.conftest import REPO


@pytest.mark.parametrize(
    ("value", "rule", "message"),
    [
        (0, Count, "k: expected int >= 1, got 0"),
        (True, Count, "k: expected int >= 1, got True"),
        ("2", Count, "k: expected int >= 1, got '2'"),
        (None, Count, "k: expected int >= 1, got None"),
        (-1, NonNegativeInt, "k: expected int >= 0, got -1"),
    ],
)
def test_a_value_outside_its_rule_is_one_line_naming_key_rule_and_value(
    value: object, rule: object, message: str
) -> None:
    with pytest.raises(UserError) as err:
        check_value(value, rule, "k")
    assert str(err.value) == message


def test_a_value_inside_its_rule_passes_unchanged() -> None:
    assert check_value(3, Count, "k") == 3
    assert check_value(0, NonNegativeInt, "k") == 0
    assert problem(1, Count) is None


def test_the_stacks_counts_speak_the_same_shape() -> None:
    section = {"micro_batch_size": 0, "global_batch_size": 8}
    with pytest.raises(
        UserError, match=r"^recipes\.deepspeed\.micro_batch_size: expected int >= 1, got 0$"
    ):
        ds_config.batch({"deepspeed": section}, world=1)
    sections = {section: {} for _, section, _, _ in nova.PPO_SERVICES}
    ppo = {"run": {"model_type": "amazon.nova-lite-v1:0:300k", "rm_replicas": 0}, **sections}
    with pytest.raises(UserError, match=r"^recipes\.run\.\w+_replicas: expected int >= 1, got"):
        nova.check(ppo)


def test_no_count_check_is_written_by_hand() -> None:
    """The old hand-written copies, each with its own message, are gone from the package."""
    by_hand = re.compile(r"isinstance\((\w+), int\).*\1 (<=|<) [01]\b|positive integer")
    offenders = [
        f"{path.relative_to(REPO)}:{number}"
        for path in (REPO / "hyperpod_launcher").rglob("*.py")
        if "examples" not in path.parts
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if by_hand.search(line)
    ]
    assert offenders == []
