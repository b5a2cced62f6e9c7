"""When the opt-in GPU suite runs: HPL_GPU_TESTS=1 and CUDA visible, and never under CI."""

from __future__ import annotations

from collections.abc import Mapping

CI_REASON = "CI has no GPU: the GPU suite runs on a GPU machine (scripts/gpu_check.sh)"


def skip_reason(env: Mapping[str, str], cuda_available: bool) -> str | None:
    """Why the GPU suite is skipped here, or None when it runs."""
    if env.get("CI", "").lower() in ("1", "true", "yes"):
        return CI_REASON
    if env.get("HPL_GPU_TESTS") != "1":
        return "the GPU suite is opt-in: set HPL_GPU_TESTS=1 on a machine with a GPU"
    if not cuda_available:
        return "HPL_GPU_TESTS=1 but CUDA is not available (torch.cuda.is_available() is false)"
    return None
