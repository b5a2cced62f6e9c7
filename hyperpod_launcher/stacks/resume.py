"""How a restarted attempt resumes: where the checkpoints lie and what to pass.

Each stack lays checkpoints out its own way, and its `Stack.resume` says how (the rules of
NeMo's exp manager, which NxD Training reuses, and of an entry that resumes itself are here).
The per-node script (templates/common/train_script.sh.j2) runs the selection on every attempt,
the first included: HyperPod's auto-resume re-runs the step with the same restart count, and a
resubmission of the same run finds its checkpoints in the same folder.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from hyperpod_launcher.util.dotted import get as _get

KEY = "exp_manager.resume_from_checkpoint"


@dataclass(frozen=True)
class Resume:
    """What the per-node script does on a restart: pick the newest checkpoint and pass it as
    `key=<path>`, or nothing when the entry resumes by itself (`folder` None)."""

    stack: str
    folder: str | None = None  # where the candidates lie; None: the entry resumes itself
    pattern: str = "*"  # candidate names (a shell glob)
    order: Literal["step", "mtime"] = "mtime"  # step: the number after the last '_'
    complete: str | None = None  # a candidate counts only if it holds an entry matching this
    key: str = KEY
    reason: str = ""  # why the entry needs nothing from us (for the script's comment)
    possible: bool = True  # False: nothing can resume the run (no checkpoint folder)


def lightning_log_dir(stack: str, recipe: Mapping[str, Any]) -> Resume:
    """NeMo's exp manager, which NxD Training reuses: <log dir>/checkpoints."""
    if _get(recipe, "exp_manager.resume_if_exists"):
        return Resume(stack, reason="exp_manager.resume_if_exists: the library finds it itself")
    log_dir = _get(recipe, "exp_manager.explicit_log_dir") or os.path.join(
        str(_get(recipe, "exp_manager.exp_dir") or "nemo_experiments"),
        str(_get(recipe, "exp_manager.name") or "default"),
    )
    return Resume(stack, folder=os.path.join(str(log_dir), "checkpoints"))


def itself(stack: str) -> Resume:
    return Resume(stack, reason="the entry resumes from its output folder when restarted")
