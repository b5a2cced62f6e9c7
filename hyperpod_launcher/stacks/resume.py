"""How a restarted attempt resumes, per stack: where its checkpoints lie and what to pass.

Each stack lays checkpoints out its own way (`RULES`, one row per stack):
- adapter: sharded checkpoints in `<checkpoint_dir>/sharded/step_<N>/tp<X>_ep<Y>/` (PEFT:
  `peft_sharded/`); `exp_manager.resume_from_checkpoint` names the `step_<N>` folder and the
  adapter appends `tp<X>_ep<Y>` for each rank itself. `full/steps_<N>/` holds weights only and
  never resumes a run. Local checkpoints (`exp_manager.auto_checkpoint.enabled`) are reloaded
  by the adapter itself from `<checkpoint_dir>/local/`, unless a resume path is passed.
- neuron (NxD Training) and nemo: with `exp_manager.resume_if_exists` the library finds the
  newest checkpoint in `<log dir>/checkpoints/` itself; otherwise the newest entry there is
  passed as `exp_manager.resume_from_checkpoint`.
- open / deepspeed: the entry resumes itself from its output folder; pass nothing.
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


def _adapter(recipe: Mapping[str, Any]) -> Resume:
    if _get(recipe, "exp_manager.auto_checkpoint.enabled"):
        return Resume("adapter", reason="the adapter reloads its local checkpoints itself")
    exp_dir = _get(recipe, "exp_manager.exp_dir")
    root = _get(recipe, "exp_manager.checkpoint_dir") or (
        os.path.join(str(exp_dir), "checkpoints") if exp_dir else None
    )
    if not root:
        return Resume("adapter", reason="no checkpoint folder is configured", possible=False)
    peft = _get(recipe, "model.peft.peft_type") is not None
    by_step = _get(recipe, "exp_manager.checkpoint_callback_params.monitor", "step") == "step"
    return Resume(
        "adapter",
        folder=os.path.join(str(root).rstrip("/"), "peft_sharded" if peft else "sharded"),
        pattern="step_*" if by_step else "*",
        order="step" if by_step else "mtime",
        complete="tp*_ep*",
    )


def _lightning_log_dir(stack: str, recipe: Mapping[str, Any]) -> Resume:
    """NeMo's exp manager, which NxD Training reuses: <log dir>/checkpoints."""
    if _get(recipe, "exp_manager.resume_if_exists"):
        return Resume(stack, reason="exp_manager.resume_if_exists: the library finds it itself")
    log_dir = _get(recipe, "exp_manager.explicit_log_dir") or os.path.join(
        str(_get(recipe, "exp_manager.exp_dir") or "nemo_experiments"),
        str(_get(recipe, "exp_manager.name") or "default"),
    )
    return Resume(stack, folder=os.path.join(str(log_dir), "checkpoints"))


def _itself(stack: str) -> Resume:
    return Resume(stack, reason="the entry resumes from its output folder when restarted")


RULES = {
    "adapter": _adapter,
    "neuron": lambda recipe: _lightning_log_dir("neuron", recipe),
    "nemo": lambda recipe: _lightning_log_dir("nemo", recipe),
    "open": lambda recipe: _itself("open"),
    "deepspeed": lambda recipe: _itself("deepspeed"),
}


def rule(stack: str, recipe: Mapping[str, Any]) -> Resume:
    return RULES[stack](recipe)


# The recipe key that says where a stack saves its checkpoints (SageMaker points it at the
# estimator's checkpoint_local_path, which checkpoint_s3_uri syncs).
CHECKPOINT_KEYS = {
    "adapter": "exp_manager.checkpoint_dir",
    "neuron": "exp_manager.checkpoint_callback_params.dirpath",
    "nemo": "exp_manager.checkpoint_callback_params.dirpath",
    "open": "exp_manager.checkpoint_dir",
    "deepspeed": "exp_manager.checkpoint_dir",
}

# Where a stack writes its final model, on SageMaker set to /opt/ml/model (uploaded as
# model.tar.gz) unless the recipe names a folder. An entry without such a key finds that folder
# in SM_MODEL_DIR, which SageMaker sets.
FINAL_MODEL_KEYS = {"adapter": "exp_manager.export_full_model.final_export_dir"}
