"""The opt-in GPU suite (tests/gpu) skips itself: under CI (which has no GPU), without
HPL_GPU_TESTS=1, and without CUDA; it runs only with all three in its favour."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import REPO
from tests.gpu.gating import CI_REASON, skip_reason


def test_skip_reasons() -> None:
    assert skip_reason({"CI": "true", "HPL_GPU_TESTS": "1"}, cuda_available=True) == CI_REASON
    assert "HPL_GPU_TESTS=1" in (skip_reason({}, cuda_available=True) or "")
    assert "CUDA is not available" in (skip_reason({"HPL_GPU_TESTS": "1"}, False) or "")
    assert skip_reason({"HPL_GPU_TESTS": "1"}, cuda_available=True) is None


def test_under_ci_every_gpu_test_is_skipped_saying_ci_has_no_gpu() -> None:
    env = {**os.environ, "CI": "true", "HPL_GPU_TESTS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "tests/gpu"],
        cwd=REPO, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert " passed" not in proc.stdout and " failed" not in proc.stdout
    skipped = [line for line in proc.stdout.splitlines() if line.startswith("SKIPPED")]
    assert skipped and all(CI_REASON in line for line in skipped), proc.stdout
