"""The Slurm suites need the testbed (scripts/slurm_testbed) and torch's torchrun."""

from __future__ import annotations

import importlib.util
import shutil

import pytest
import testbed

from tests.conftest import require


@pytest.fixture(scope="session")
def slurm_cluster() -> None:
    require(shutil.which("sbatch") is not None, "Slurm (sbatch)")
    require(importlib.util.find_spec("torch") is not None, "torch (torchrun)")
    try:
        testbed.ensure_up()
    except RuntimeError as err:
        require(False, f"the Slurm testbed ({err})")
