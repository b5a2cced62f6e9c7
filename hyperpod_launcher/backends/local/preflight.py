"""What `hyperpod-launch preflight` checks for a job on this machine."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hyperpod_launcher import train_stack
from hyperpod_launcher.preflight import Check

if TYPE_CHECKING:
    from hyperpod_launcher.launch import Plan


def checks(plan: Plan) -> list[Check]:
    return [Check("open fine-tuning stack", lambda: train_stack.check(plan.spec), timeout=70)]
