"""What `hyperpod-launch preflight` checks for a job on this machine."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hyperpod_launcher.stacks import train_stack

if TYPE_CHECKING:
    from hyperpod_launcher.launch.execute import Plan
    from hyperpod_launcher.prepare.preflight import Check


def checks(plan: Plan) -> list[Check]:
    return train_stack.checks(plan.spec)
