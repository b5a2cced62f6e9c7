"""A job's progress as `status`, `jobs`, `--wait` and the end-of-job summary show it.

Slurm and local jobs: the metrics file the per-node watcher writes into the job folder (one
small JSON line per logging step). Other backends: the job's own output, through the
backend's `logs`, which carries the same `hpl-metrics` lines."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from hyperpod_launcher.jobs.records import JobRecord
from hyperpod_launcher.telemetry import figures as fig
from hyperpod_launcher.telemetry.node_watch import HANG_EXIT, NO_EFA_EXIT, parse_line


def in_job_folder(backend: str) -> bool:
    """Whether the backend's jobs write the metrics file into the job folder."""
    from hyperpod_launcher import backends

    return bool(getattr(backends.get(backend), "metrics_in_job_folder", False))


def metrics_file(record: JobRecord) -> Path:
    return Path(record.job_dir) / f"hpl-metrics-{record.launch_id}.jsonl"


def _file_records(path: Path) -> Iterator[dict[str, Any]]:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return
    for line in text.splitlines():
        try:
            found = json.loads(line)
        except ValueError:
            continue
        if isinstance(found, dict):
            yield found


def last_step(record: JobRecord, tail_bytes: int = 4096) -> fig.Figures:
    """Only the step reached (the `jobs` column): the last step line of the metrics file's
    tail, so that a long list stays as fast as the file count allows."""
    try:
        with metrics_file(record).open("rb") as handle:
            handle.seek(0, 2)
            handle.seek(max(0, handle.tell() - tail_bytes))
            lines = handle.read().decode(errors="replace").splitlines()
    except OSError:
        return fig.Figures()
    for line in reversed(lines):
        try:
            found = json.loads(line)
        except ValueError:
            continue
        if isinstance(found, dict) and found.get("event", "step") == "step":
            step, max_steps = found.get("step"), found.get("max_steps")
            if not isinstance(step, int):
                break
            known = max_steps if isinstance(max_steps, int) and max_steps > 0 else None
            return fig.Figures(
                step=step,
                max_steps=known,
                percent=100.0 * step / known if known else None,
            )
    return fig.Figures()


def log_records(lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    for line in lines:
        found = parse_line(line)
        if found is not None:
            yield found


def records_of(record: JobRecord) -> list[dict[str, Any]]:
    if in_job_folder(record.backend):
        return list(_file_records(metrics_file(record)))
    from hyperpod_launcher import backends
    from hyperpod_launcher.util.errors import LauncherError

    impl = backends.get(record.backend)
    if "logs" not in impl.capabilities:
        return []
    try:
        return list(log_records(impl.logs(record, follow=False, rank=None)))
    except (LauncherError, NotImplementedError):
        return []


def accelerators(record: JobRecord) -> int | None:
    if record.nodes and record.procs_per_node:
        return record.nodes * record.procs_per_node
    return None


def figures_of(
    record: JobRecord, finished: bool, found: list[dict[str, Any]] | None = None
) -> fig.Figures:
    return fig.derive(
        records_of(record) if found is None else found,
        submitted_at=record.submitted_at,
        accelerators=accelerators(record),
        peak_tflops=fig.dense_bf16_peak_tflops(record.instance_type),
        now=time.time(),
        finished=finished,
    )


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def _rate(value: float | None) -> str:
    if value is None:
        return "? tok/s/GPU"
    text = f"{value / 1000:.1f}k" if value >= 1000 else f"{value:.1f}"
    return f"{text} tok/s/GPU"


def _percent(value: float | None) -> str:
    return "?" if value is None else f"{100 * value:.0f} %"


def steps_text(figures: fig.Figures) -> str:
    """`step 1200/5000 (24 %)` (the `jobs` column)."""
    if figures.step is None:
        return "-"
    if figures.max_steps is None:
        return f"step {figures.step}"
    return f"step {figures.step}/{figures.max_steps} ({figures.percent:.0f} %)"


def line(figures: fig.Figures) -> str:
    """`step 1200/5000 (24 %), loss 1.83, 41.2k tok/s/accel, MFU 38 %, ETA 3h10m`."""
    if figures.step is None:
        return "no training step yet"
    parts = [steps_text(figures)]
    if figures.loss is not None:
        parts.append(f"loss {figures.loss:.4g}")
    parts.append(_rate(figures.tokens_per_s_per_accelerator))
    parts.append(f"MFU {_percent(figures.mfu)}")
    parts.append(f"ETA {duration(figures.eta_s)}")
    return ", ".join(parts)


def summary(figures: fig.Figures) -> str:
    """The end of a job: time to first step, mean throughput, MFU, goodput."""
    return (
        f"summary: time to first step {duration(figures.time_to_first_step_s)}"
        f" (queue {duration(figures.queue_wait_s)}, start-up {duration(figures.startup_s)}),"
        f" mean {_rate(figures.mean_tokens_per_s_per_accelerator)},"
        f" MFU {_percent(figures.mean_mfu)}, goodput {_percent(figures.goodput)}"
        f" over {figures.attempts} attempt(s)"
    )


def causes(figures: fig.Figures, exit_code: int | None) -> list[str]:
    """What the watcher found, in words (`status` shows them)."""
    found = []
    hang: Mapping[str, Any] | None = figures.hang
    if hang is not None or exit_code == HANG_EXIT:
        where = f" on {hang.get('host')}" if hang else ""
        window = f" for {duration(hang.get('window_s'))}" if hang else ""
        stacks = f"; stacks: {hang.get('stacks')}" if hang and hang.get("stacks") else ""
        found.append(f"hang: no training step{window}{where}{stacks}")
    net = figures.network
    if net is not None or exit_code == NO_EFA_EXIT:
        host = f" on {net.get('host')}" if net else ""
        found.append(f"network: NCCL chose TCP sockets instead of EFA{host}")
    return found
