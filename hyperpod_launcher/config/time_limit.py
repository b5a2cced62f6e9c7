"""`run.time_limit`: one parser, the same accepted forms on every backend.

The forms are sbatch's `--time` forms: `minutes`, `minutes:seconds`, `hours:minutes:seconds`,
`days-` (whole days), `days-hours`, `days-hours:minutes`, `days-hours:minutes:seconds`, and
`UNLIMITED` or `INFINITE` (any case). `0` means no limit, as it does for sbatch. Slurm passes
the text on; the other backends convert it with `time_limit_seconds` (activeDeadlineSeconds,
max_run).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hyperpod_launcher.util.errors import UserError

UNLIMITED = ("UNLIMITED", "INFINITE")
_FORM = re.compile(r"^(?:(?P<days>\d+)-)?(?P<a>\d+)(?::(?P<b>\d+))?(?::(?P<c>\d+))?$|^(?P<d>\d+)-$")
ALLOWED = "minutes, M:S, H:M:S, D-H, D-H:M, D-H:M:S or UNLIMITED, e.g. 90, 04:00:00, 2-00:00:00"


def normalize(value: Any, key: str) -> str | None:
    """The checked time limit as sbatch text (None: not set); UserError on any other form."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise UserError(f"{key}={value!r}: expected a time limit ({ALLOWED})")
    text = str(value).strip()
    if text.upper() in UNLIMITED:
        return "UNLIMITED"
    if not _FORM.match(text):
        raise UserError(f"{key}={value!r}: expected a time limit ({ALLOWED})")
    return text


def time_limit_seconds(value: Any, key: str = "run.time_limit") -> int | None:
    """The time limit in seconds; None when there is none (unset, 0 or UNLIMITED)."""
    text = normalize(value, key)
    if text is None or text == "UNLIMITED":
        return None
    match = _FORM.match(text)
    assert match is not None  # normalize accepted it
    parts = [int(p) for p in match.group("a", "b", "c") if p is not None]
    days = match.group("days") or match.group("d")
    if days is not None:  # days-[hours[:minutes[:seconds]]]
        hours, minutes, seconds = [*parts, 0, 0, 0][:3]
        total = int(days) * 86400 + hours * 3600 + minutes * 60 + seconds
    elif len(parts) == 1:  # minutes
        total = parts[0] * 60
    elif len(parts) == 2:  # minutes:seconds
        total = parts[0] * 60 + parts[1]
    else:  # hours:minutes:seconds
        total = parts[0] * 3600 + parts[1] * 60 + parts[2]
    return total or None


# Dense bf16 peak per device (public specifications), for a rough step time.
PEAK_TFLOPS = {
    "H100": 989, "H200": 989, "A100 40GB": 312, "A100 80GB": 312, "A10G": 125, "L40S": 362,
    "Trainium": 190, "Trainium2": 667,
}  # fmt: skip
UTILIZATION = 0.4  # of peak: a good run; the estimate is a floor of the step time


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


@dataclass(frozen=True)
class StepFacts:
    """Where a stack's recipes state the model's shape (keys under `model`), for a floor of
    the step time; hidden size and attention heads have the same keys in every stack."""

    layers: str
    ffn: str
    groups: str  # key/value heads (query groups); unset: one per head
    batch: str
    seq: str
    vocab: str | None = None  # None: the recipe's vocabulary does not count
    batch_per_rank: bool = False  # a micro-batch per data-parallel rank (TP x CP share one)
    # Lightning's callback: without every_n_train_steps it saves after validation
    saves_after_validation: bool = False


def first_checkpoint_step(recipe: Mapping[str, Any], facts: StepFacts) -> int | None:
    """The step of the recipe's first checkpoint; None when it writes none."""
    exp = recipe.get("exp_manager") or {}
    params = exp.get("checkpoint_callback_params") or {}
    if not exp.get("create_checkpoint_callback", True) or params.get("save_top_k") == 0:
        return None
    every = _int(params.get("every_n_train_steps"))
    if every <= 0 and facts.saves_after_validation:
        every = _int((recipe.get("trainer") or {}).get("val_check_interval"))
    return every if every > 0 else None


def _model_shape(recipe: Mapping[str, Any], facts: StepFacts) -> tuple[float, int] | None:
    """(parameters, tokens a step) from the recipe's own model keys, where it states them."""
    model = recipe.get("model") or {}
    layers, hidden = _int(model.get(facts.layers)), _int(model.get("hidden_size"))
    ffn, heads = _int(model.get(facts.ffn)), _int(model.get("num_attention_heads"))
    groups = _int(model.get(facts.groups)) or heads
    vocab = _int(model.get(facts.vocab)) if facts.vocab else 0
    tokens = _int(model.get(facts.batch)) * _int(model.get(facts.seq))
    if not (layers and hidden and ffn and heads and tokens):
        return None
    attention = hidden * hidden * (2 + 2 * groups / heads)
    return layers * (attention + 3 * hidden * ffn) + 2 * vocab * hidden, tokens


def step_seconds(
    recipe: Mapping[str, Any], facts: StepFacts, devices: int, device_model: str | None
) -> float | None:
    """A floor of the seconds a training step takes: 6 x parameters x tokens over the
    devices' peak at UTILIZATION. None where the recipe or the instance lacks a number."""
    shape = _model_shape(recipe, facts)
    peak = PEAK_TFLOPS.get(device_model or "")
    if shape is None or peak is None or devices <= 0:
        return None
    params, tokens = shape
    if facts.batch_per_rank:
        model = recipe.get("model") or {}
        split = _int(model.get("tensor_model_parallel_degree")) or 1
        split *= _int(model.get("context_parallel_degree")) or 1
        tokens *= max(devices // split, 1)
    return 6 * params * tokens / (devices * peak * 1e12 * UTILIZATION)


def before_first_checkpoint(
    limit: str | None,
    recipe: Mapping[str, Any],
    facts: StepFacts | None,
    devices: int,
    device_model: str | None,
    resumes: bool,
) -> str | None:
    """A warning when the time limit ends before the first checkpoint is written; a UserError
    when, on top, nothing could resume the run. No estimate without the stack's StepFacts."""
    seconds = time_limit_seconds(limit)
    if seconds is None or facts is None:
        return None
    first = first_checkpoint_step(recipe, facts)
    step = step_seconds(recipe, facts, devices, device_model)
    if first is None or step is None or first * step <= seconds:
        return None
    fit = int(seconds / step)
    line = (
        f"run.time_limit={limit} ({seconds} s) ends before the first checkpoint at step "
        f"{first} (about {step:.1f} s a step on {devices} {device_model} devices: about {fit} "
        f"steps fit), so every try ends with nothing saved; checkpoint more often "
        "(exp_manager.checkpoint_callback_params.every_n_train_steps"
        f"{', trainer.val_check_interval' if facts.saves_after_validation else ''}) or raise "
        "run.time_limit"
    )
    if not resumes:
        raise UserError(line.replace("so every try", "and the run cannot resume: every try"))
    return line
