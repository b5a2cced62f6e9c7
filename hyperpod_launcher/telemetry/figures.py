"""Every figure derived from a job's `hpl-metrics` records, computed here and only here."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

RECENT_LINES = 5  # the step lines that throughput, MFU and the ETA look at


def dense_bf16_peak_tflops(instance_type: str | None) -> float | None:
    """The dense bf16 peak of one accelerator of this instance type, in TFLOP/s."""
    from hyperpod_launcher.config import instances

    instance = instances.lookup(instance_type)
    if instance is None or not instance.peak_bf16_tflops:
        return None
    return instance.peak_bf16_tflops


def device_peak_tflops(device_name: str | None) -> float | None:
    """The dense bf16 peak of the device a step line names (jobs without an instance type,
    e.g. local ones), in TFLOP/s."""
    from hyperpod_launcher.config import instances

    chip = instances.chip_of_device(device_name)
    return chip.peak_bf16_tflops if chip is not None else None


def flops_per_token(model: Mapping[str, Any] | None) -> float | None:
    """Model FLOPs per trained token: 6 x parameters without the input embedding, plus
    12 x layers x hidden x sequence for attention (recomputation not counted)."""
    if not model or not model.get("params"):
        return None
    attention = 0.0
    if model.get("layers") and model.get("hidden") and model.get("seq"):
        attention = 12.0 * model["layers"] * model["hidden"] * model["seq"]
    return 6.0 * model["params"] + attention


@dataclass(frozen=True)
class Figures:
    step: int | None = None
    max_steps: int | None = None
    percent: float | None = None
    loss: float | None = None
    lr: float | None = None
    tokens: int = 0  # trained tokens in all, every rank's counted once per step
    tokens_per_s_per_accelerator: float | None = None  # over the recent lines
    mean_tokens_per_s_per_accelerator: float | None = None  # over all productive time
    mfu: float | None = None  # fraction of the dense bf16 peak, recent
    mean_mfu: float | None = None
    eta_s: float | None = None
    time_to_first_step_s: float | None = None  # submit to the first step line
    queue_wait_s: float | None = None  # submit to the first attempt's start, where known
    startup_s: float | None = None  # that start to the first step line
    goodput: float | None = None  # productive step time over elapsed time, restarts included
    productive_s: float = 0.0
    elapsed_s: float | None = None
    attempts: int = 0
    memory_gib: float | None = None
    hang: Mapping[str, Any] | None = None  # the last hang the watchdog reported
    network: Mapping[str, Any] | None = None  # a fall back to TCP sockets, where reported
    peak_tflops: float | None = None
    accelerators: int | None = None
    mfu_note: str | None = None  # why MFU is missing (or what it leaves out)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _epoch(stamp: str | None) -> float | None:
    if not stamp:
        return None
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def derive(
    records: Iterable[Mapping[str, Any]],
    *,
    submitted_at: str | None,
    accelerators: int | None,
    peak_tflops: float | None,
    now: float,
    finished: bool,
) -> Figures:
    """The figures of one job from its records (in the order written)."""
    steps: list[Mapping[str, Any]] = []
    starts: dict[int, float] = {}
    hang = network = None
    for record in records:
        event = record.get("event", "step")
        if event == "step" and isinstance(record.get("step"), int):
            steps.append(record)
        elif event == "attempt":
            starts.setdefault(int(record.get("attempt", 0)), float(record["time"]))
        elif event == "hang":
            hang = record
        elif event == "network" and not record.get("efa", True):
            network = record
    submitted = _epoch(submitted_at)
    first_start = min(starts.values()) if starts else None
    if submitted is not None and first_start is not None:
        submitted = min(submitted, first_start)  # a foreground job is recorded once it ended
    if not steps:
        return Figures(
            queue_wait_s=_minus(first_start, submitted),
            attempts=len(starts),
            hang=hang,
            network=network,
            peak_tflops=peak_tflops,
            accelerators=accelerators,
        )
    last = steps[-1]
    if not peak_tflops and last.get("device"):
        peak_tflops = device_peak_tflops(str(last["device"]))
    # A step redone after a restart counts once: its last run is the one that stood.
    step_time: dict[int, float] = {}
    for record in steps:
        step_time[record["step"]] = _duration(record)
    productive = sum(step_time.values())
    first_time = float(steps[0]["time"])
    start = first_start if first_start is not None else submitted
    end = float(last["time"]) if finished else now
    elapsed = _minus(end, start)
    recent = steps[-RECENT_LINES:]
    recent_tokens = sum(int(r.get("tokens") or 0) for r in recent)
    recent_time = sum(_duration(r) for r in recent)
    recent_steps = sum(int(r.get("steps") or 1) for r in recent)
    total_tokens = sum(int(r.get("tokens") or 0) for r in steps)
    rate = _per(recent_tokens, recent_time, accelerators)
    mean_rate = _per(total_tokens, productive, accelerators)
    fpt = flops_per_token(last.get("model"))
    max_steps = last.get("max_steps")
    step = int(last["step"])
    eta = None
    if isinstance(max_steps, int) and max_steps > 0 and recent_steps and recent_time:
        eta = max(0, max_steps - step) * recent_time / recent_steps
    return Figures(
        step=step,
        max_steps=max_steps if isinstance(max_steps, int) and max_steps > 0 else None,
        percent=100.0 * step / max_steps if isinstance(max_steps, int) and max_steps > 0 else None,
        loss=last.get("loss"),
        lr=last.get("lr"),
        tokens=total_tokens,
        tokens_per_s_per_accelerator=rate,
        mean_tokens_per_s_per_accelerator=mean_rate,
        mfu=_mfu(rate, fpt, peak_tflops, last.get("tflops_per_accelerator")),
        mean_mfu=_mfu(mean_rate, fpt, peak_tflops, None),
        eta_s=eta,
        time_to_first_step_s=_minus(first_time, submitted),
        queue_wait_s=_minus(first_start, submitted),
        startup_s=_minus(first_time, first_start),
        goodput=min(1.0, productive / elapsed) if elapsed and elapsed > 0 else None,
        productive_s=productive,
        elapsed_s=elapsed,
        attempts=max(len(starts), 1 + max(int(r.get("attempt", 0)) for r in steps)),
        memory_gib=last.get("memory_gib"),
        hang=hang,
        network=network,
        peak_tflops=peak_tflops,
        accelerators=accelerators,
        mfu_note=last.get("mfu_note"),
    )


def _duration(record: Mapping[str, Any]) -> float:
    """Seconds of training the line covers (its steps times their step time)."""
    return float(record.get("step_time_s") or 0.0) * int(record.get("steps") or 1)


def _minus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else max(0.0, a - b)


def _per(tokens: int, seconds: float, accelerators: int | None) -> float | None:
    if not tokens or not seconds or not accelerators:
        return None
    return tokens / seconds / accelerators


def _mfu(
    rate: float | None, fpt: float | None, peak: float | None, reported: float | None
) -> float | None:
    if not peak:
        return None
    if rate is not None and fpt is not None:
        return rate * fpt / (peak * 1e12)
    return reported / peak if reported else None
