"""A custom script has no recipe rules of ours: its `training_cfg` keys are the launcher's."""

from __future__ import annotations

from hyperpod_launcher.stacks.base import Stack

STACK = Stack(name="custom", schema="hyperpod_launcher.config.schema:TrainingCfg")
