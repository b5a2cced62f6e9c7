#!/bin/bash
# Per-node training script for job trn-custom (launch golden),
# written by hyperpod-launcher 0.1.0. Every node runs it once; torchrun then starts
# 32 process(es) here and joins the c10d rendezvous.
# The backend provides HPL_NNODES, HPL_RDZV_HOST, HPL_RDZV_PORT, HPL_RDZV_ID and
# HPL_RESTART_COUNT (0 on the first attempt).
set -euo pipefail

: "${HPL_NNODES:?set by the launcher}" "${HPL_RDZV_HOST:?set by the launcher}"
: "${HPL_RDZV_PORT:?set by the launcher}" "${HPL_RDZV_ID:?set by the launcher}"

export FI_PROVIDER=efa
export FI_EFA_USE_DEVICE_RDMA=1
export FI_EFA_FORK_SAFE=1
export MALLOC_ARENA_MAX=128
export NCCL_DEBUG=WARN
export NEURON_CC_FLAGS='--model-type transformer'
# Secrets come from the submit environment, never from this file: WANDB_API_KEY
ulimit -n 65535 2>/dev/null ||
  echo "warning: cannot raise the open-files limit to 65535 (hard limit $(ulimit -Hn))" >&2
# torchrun places the processes; Slurm's task counts would mislead Lightning and torch.
unset SLURM_NTASKS SLURM_NTASKS_PER_NODE SLURM_NPROCS

cd /shared/results/trn-custom/code/golden

# Every output line starts with its global rank: `hyperpod-launch logs --rank N` picks them.
# shellcheck disable=SC2016  # torchrun fills in ${rank}, not the shell
export TORCHELASTIC_LOG_LINE_PREFIX_TEMPLATE='[rank${rank}]:'
torchrun_args=(
  --tee=3
  --nnodes="$HPL_NNODES"
  --nproc-per-node=32
  --rdzv-backend=c10d
)
# --- Watching the run (hyperpod_launcher/telemetry/node_watch.py) -------------------------
# A watcher runs the training command: it writes `hpl-metrics` lines (and the metrics file in
# the job folder), dumps stacks and ends a hung attempt, and checks NCCL's network on EFA.
watch=()
if command -v python3 >/dev/null 2>&1; then
  watch_py="$(mktemp "${TMPDIR:-/tmp}/hpl_node_watch.XXXXXX")"
  cat >"$watch_py" <<'HPL_NODE_WATCH'
"""Runs beside the training processes on every node (standard library only: the per-node
script ships this file into containers that lack the launcher).

`python3 node_watch.py [options] -- torchrun ...` starts the command, passes its output
through unchanged and:
- turns the adapter's, NxD Training's and NeMo's own step lines into `hpl-metrics` lines
  (the open entries print those natively) and appends every contract line to the job
  folder's metrics file, where `status` reads it;
- when no step line arrives for a window, writes the Python stacks of the training processes
  (py-spy when present, else SIGUSR2 to the processes that registered faulthandler for it)
  and ends the attempt with HANG_EXIT, so the restart policy takes over;
- on EFA instances asks NCCL for its network choice and reports a fall back to TCP sockets
  (or, with HPL_REQUIRE_EFA=1, ends the attempt with NO_EFA_EXIT).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:  # the launcher imports this module for the contract: keep that import light
    import argparse
    import subprocess

PREFIX = "hpl-metrics "
HANG_EXIT = 75  # sysexits' EX_TEMPFAIL: the attempt hung; try again
NO_EFA_EXIT = 76  # NCCL fell back to TCP sockets and HPL_REQUIRE_EFA is set
DEFAULT_HANG_FLOOR_S = 900.0
DEFAULT_HANG_FACTOR = 10.0
STACK_GRACE_S = 3.0

# Patterns as text: `re` compiles each on first use (and caches it), not when the launcher
# imports this module for the contract.
_RANK_PREFIX = r"^\[(?:rank|default)(\d+)\]:"
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
# Lightning's progress bar (NeMo 1.x, the HyperPod training adapter, NxD Training):
# `Epoch 0:   0%|  | 189/301501 [59:12<1573:03:24, 18.79s/it, ..., reduced_train_loss=7.560,
#  global_step=188.0, consumed_samples=24064.0, ...]`
_BAR = r"Epoch \d+:.*?(?P<done>\d+)/(?P<total>\d+) \[(?P<meta>[^\]]*)\]"
_BAR_KEY = rf"(?P<key>[A-Za-z_/ ]+?)=(?P<value>{_NUMBER})"
# NeMo 2's ProgressPrinter: `Training epoch 0, iteration 5/9 | lr: 0.0001 | global_step: 5 |
#  reduced_train_loss: 1.26 | train_step_timing in s: 0.3964 | consumed_samples: 6`
_PRINTER = r"Training epoch \d+, iteration (?P<done>\d+)/(?P<total>\d+)(?P<meta>.*)"
_PRINTER_KEY = rf"\|\s*(?P<key>[^|:]+?):\s*(?P<value>{_NUMBER})"
_NCCL_NET = r"NCCL INFO Using network (?P<net>.+?)\s*$"


def format_line(record: dict[str, Any]) -> str:
    return PREFIX + json.dumps(record, separators=(",", ":"))


def strip_rank(line: str) -> tuple[int | None, str]:
    """torchrun's `[rank<N>]:` prefix apart from the line."""
    match = re.match(_RANK_PREFIX, line)
    if match is None:
        return None, line
    return int(match.group(1)), line[match.end() :]


def parse_line(line: str) -> dict[str, Any] | None:
    """The record of one `hpl-metrics {...}` line (any rank prefix allowed), or None."""
    _, text = strip_rank(line.rstrip("\n"))
    at = text.find(PREFIX)
    if at < 0:
        return None
    try:
        record = json.loads(text[at + len(PREFIX) :])
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def _fields(pattern: str, text: str) -> dict[str, float]:
    return {m["key"].strip(): float(m["value"]) for m in re.finditer(pattern, text)}


def _step_record(
    step: int, max_steps: int, fields: dict[str, float], step_time: float | None
) -> dict[str, Any]:
    record: dict[str, Any] = {"event": "step", "step": step, "max_steps": max_steps}
    loss = fields.get("reduced_train_loss", fields.get("loss"))
    if loss is not None:
        record["loss"] = loss
    if "lr" in fields:
        record["lr"] = fields["lr"]
    if "consumed_samples" in fields:
        record["consumed_samples"] = int(fields["consumed_samples"])
    if step_time is not None:
        record["step_time_s"] = step_time
    if "TFLOPS_per_GPU" in fields:
        record["tflops_per_accelerator"] = fields["TFLOPS_per_GPU"]
    return record


def parse_stack_line(line: str) -> dict[str, Any] | None:
    """A step record from the adapter's, NxD Training's or NeMo's own progress line."""
    _, text = strip_rank(line)
    match = re.search(_PRINTER, text)
    if match:
        fields = _fields(_PRINTER_KEY, match["meta"])
        step_time = fields.get("train_step_timing in s")
        # The iteration counts from 0 and its total is the last one: steps are one more.
        return _step_record(int(match["done"]) + 1, int(match["total"]) + 1, fields, step_time)
    match = re.search(_BAR, text)
    if match:
        meta = match["meta"]
        fields = _fields(_BAR_KEY, meta)
        rate = re.search(rf"({_NUMBER})(s/it|it/s)", meta)
        step_time = fields.get("train_step_timing in s")
        if step_time is None and rate:
            value = float(rate.group(1))
            step_time = value if rate.group(2) == "s/it" else (1 / value if value else None)
        return _step_record(int(match["done"]), int(match["total"]), fields, step_time)
    return None


def nccl_network(line: str) -> str | None:
    """NCCL's network choice from its INIT line (`Using network Socket`, `... AWS Libfabric`)."""
    match = re.search(_NCCL_NET, line)
    return match["net"] if match else None


def hang_window(
    intervals: list[float], explicit: float | None, floor: float, factor: float
) -> float:
    """Seconds without a step line that count as a hang: the explicit window when set, else
    `factor` x the median interval between step lines, at least `floor`."""
    if explicit:
        return explicit
    if not intervals:
        return floor
    ordered = sorted(intervals)
    middle = len(ordered) // 2
    median = ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2
    return max(floor, factor * median)


def _env_float(name: str) -> float | None:
    text = os.environ.get(name, "").strip()
    try:
        return float(text) if text else None
    except ValueError:
        print(f"hyperpod-launcher: ignoring {name}={text!r} (not a number)", file=sys.stderr)
        return None


def _json_object(text: str) -> dict[str, Any]:
    try:
        found = json.loads(text) if text else {}
    except ValueError:
        print(f"hyperpod-launcher: ignoring --mfu-inputs {text!r} (not JSON)", file=sys.stderr)
        return {}
    return found if isinstance(found, dict) else {}


def _truthy(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def descendants(pid: int) -> list[int]:
    """The processes below `pid` (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                ppid = int(handle.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def catches(pid: int, signum: int) -> bool:
    """Whether the process installed a handler for the signal (else it would die of it)."""
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("SigCgt:"):
                    return bool(int(line.split()[1], 16) >> (signum - 1) & 1)
    except (OSError, ValueError):
        pass
    return False


class Watch:
    """The state of one attempt on one node."""

    def __init__(self, args: argparse.Namespace, out: TextIO = sys.stdout) -> None:
        import socket
        import threading

        self.args = args
        self.out = out
        self.lock = threading.Lock()
        self.host = socket.gethostname()
        self.attempt = int(os.environ.get("HPL_RESTART_COUNT", "0") or 0)
        self.last_step: float | None = None
        self.parsed_step = 0  # the last step a stack line reported
        self.intervals: list[float] = []
        self.network_seen = False
        self.capture: list[str] | None = None
        self.stop_reason: int | None = None
        self.explicit = _env_float("HPL_HANG_TIMEOUT")
        self.floor = _env_float("HPL_HANG_FLOOR") or DEFAULT_HANG_FLOOR_S
        self.factor = _env_float("HPL_HANG_FACTOR") or DEFAULT_HANG_FACTOR
        self.disabled = self.explicit is not None and self.explicit <= 0
        self.mfu_inputs = _json_object(getattr(args, "mfu_inputs", ""))

    # -- contract lines ---------------------------------------------------------------
    def metrics_path(self) -> str | None:
        folder = self.args.job_dir
        if not folder or not os.path.isdir(folder) or not self.args.launch_id:
            return None
        return os.path.join(folder, f"hpl-metrics-{self.args.launch_id}.jsonl")

    def record(self, record: dict[str, Any]) -> None:
        path = self.metrics_path()
        if path is None:
            return
        try:
            with open(path, "a") as handle:
                handle.write(json.dumps(record, separators=(",", ":")) + "\n")
        except OSError as err:
            print(f"hyperpod-launcher: cannot write {path}: {err}", file=sys.stderr)

    def emit(self, record: dict[str, Any]) -> None:
        """A contract line the watcher makes itself: on stdout and in the metrics file."""
        record.setdefault("time", time.time())
        print(format_line(record), file=self.out, flush=True)
        self.record(record)

    def step_seen(self, now: float) -> None:
        if self.last_step is not None:
            self.intervals = [*self.intervals[-49:], now - self.last_step]
        self.last_step = now

    # -- every output line ------------------------------------------------------------
    def on_line(self, line: str, stop: Callable[[int], None]) -> None:
        with self.lock:
            if self.capture is not None:
                self.capture.append(line)
        rank, text = strip_rank(line)
        now = time.time()
        native = parse_line(line)
        if native is not None:
            native.setdefault("attempt", self.attempt)
            self.record(native)
            if native.get("event", "step") == "step":
                self.step_seen(now)
            return
        if rank in (None, 0):
            converted = parse_stack_line(text)
            if converted is not None and converted["step"] > self.parsed_step:
                steps = converted["step"] - self.parsed_step if self.parsed_step else 1
                self.parsed_step = converted["step"]
                converted.update(steps=steps, time=now, attempt=self.attempt, source="parsed")
                self.add_mfu_inputs(converted)
                self.emit(converted)
                self.step_seen(now)
                return
        if not self.network_seen and self.args.efa:
            net = nccl_network(text)
            if net is not None:
                self.network_seen = True
                self.on_network(net, stop)

    def add_mfu_inputs(self, record: dict[str, Any]) -> None:
        """The recipe's model shape and the step's tokens (the stacks' lines lack both)."""
        inputs = self.mfu_inputs
        if isinstance(inputs.get("model"), dict):
            record["model"] = inputs["model"]
        if isinstance(inputs.get("tokens_per_step"), int):
            record["tokens"] = inputs["tokens_per_step"] * record["steps"]
        if inputs.get("note"):
            record["mfu_note"] = str(inputs["note"])

    def on_network(self, net: str, stop: Callable[[int], None]) -> None:
        socket_chosen = net.lower().startswith("socket")
        self.emit({"event": "network", "network": net, "efa": not socket_chosen, "host": self.host})
        if not socket_chosen:
            return
        required = _truthy("HPL_REQUIRE_EFA")
        print(
            f"hyperpod-launcher: WARNING: NCCL on {self.host} chose TCP sockets, not EFA "
            "(the job runs far slower): check the EFA devices, the aws-ofi-nccl plugin and "
            "FI_PROVIDER" + ("; HPL_REQUIRE_EFA is set: ending this attempt" if required else ""),
            file=sys.stderr,
            flush=True,
        )
        if required:
            stop(NO_EFA_EXIT)

    # -- the watchdog -------------------------------------------------------------------
    def hung_for(self, now: float) -> float | None:
        """Seconds past the window without a step line, once armed (after the first one)."""
        if self.disabled or self.last_step is None:
            return None
        window = hang_window(self.intervals, self.explicit, self.floor, self.factor)
        return window if now - self.last_step > window else None

    def dump_stacks(self, root: int) -> str:
        """The training processes' Python stacks, as text."""
        import shutil
        import subprocess

        pids = descendants(root)
        spy = shutil.which("py-spy")
        parts: list[str] = []
        if spy:
            for pid in pids:
                done = subprocess.run(
                    [spy, "dump", "--pid", str(pid)], capture_output=True, text=True, check=False
                )
                if done.stdout.strip():
                    parts.append(f"== py-spy dump --pid {pid}\n{done.stdout}")
            if parts:
                return "\n".join(parts)
        with self.lock:
            self.capture = []
        asked = [pid for pid in pids if catches(pid, signal.SIGUSR2)]
        for pid in asked:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGUSR2)
        time.sleep(STACK_GRACE_S if asked else 0)
        with self.lock:
            lines, self.capture = self.capture or [], None
        head = f"== faulthandler stacks of pids {asked} (SIGUSR2)\n" if asked else ""
        if not asked:
            head = "== no training process registered a stack dump (SIGUSR2) and py-spy is absent\n"
        return head + "".join(line if line.endswith("\n") else line + "\n" for line in lines)

    def stacks_path(self) -> str:
        name = f"stacks-{self.args.launch_id or 'job'}-attempt{self.attempt}-{self.host}.txt"
        folder = (
            self.args.job_dir if self.args.job_dir and os.path.isdir(self.args.job_dir) else "."
        )
        return os.path.join(folder, name)


class Quiet:
    """An output stream that goes quiet once its reader is gone (a killed launcher was
    reading it): the job runs on, and the job folder's files keep its lines."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream

    def write(self, data: Any) -> None:
        if self.stream is None:
            return
        try:
            self.stream.write(data)
            self.stream.flush()
        except (OSError, ValueError):  # a broken pipe, or a closed stream
            self.stream = None

    def flush(self) -> None:
        pass


def _pump(fd: int, sink: Any, watch: Watch, stop: Callable[[int], None]) -> None:
    """Copy the command's output as it comes; hand each line to the watch. Progress bars
    redraw with a carriage return and no newline, so both end a line here."""
    pending = b""
    while True:
        try:
            data = os.read(fd, 65536)
        except OSError:
            data = b""
        if not data:
            break
        sink.write(data)
        sink.flush()
        pending += data
        *lines, pending = re.split(rb"[\r\n]", pending)
        for raw in lines:
            if raw:
                _handle(watch, raw.decode(errors="replace"), stop)
    if pending:
        _handle(watch, pending.decode(errors="replace"), stop)


def _handle(watch: Watch, line: str, stop: Callable[[int], None]) -> None:
    try:
        watch.on_line(line, stop)
    except Exception as err:  # the job's output must keep flowing whatever a line holds
        print(f"hyperpod-launcher: watcher: {err}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    import subprocess
    import threading

    watch = Watch(args, out=Quiet(sys.stdout))  # type: ignore[arg-type]
    env = dict(os.environ)
    if args.efa:
        env["NCCL_DEBUG"] = "INFO"
        env.setdefault("NCCL_DEBUG_SUBSYS", "INIT,NET")
    proc = subprocess.Popen(args.command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def stop(code: int) -> None:
        watch.stop_reason = code
        _terminate(proc)

    def forward(signum: int, _frame: Any) -> None:
        if proc.poll() is None:
            proc.send_signal(signum)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, forward)
    watch.emit({"event": "attempt", "attempt": watch.attempt, "host": watch.host})
    pumps = [
        threading.Thread(target=_pump, args=(fd, sink, watch, stop), daemon=True)
        for fd, sink in (
            (proc.stdout.fileno(), Quiet(sys.stdout.buffer)),  # type: ignore[union-attr]
            (proc.stderr.fileno(), Quiet(sys.stderr.buffer)),  # type: ignore[union-attr]
        )
    ]
    for pump in pumps:
        pump.start()
    while proc.poll() is None:
        time.sleep(args.poll)
        window = watch.hung_for(time.time())
        if window is not None and watch.stop_reason is None:
            on_hang(watch, proc, window)
            stop(HANG_EXIT)
    for pump in pumps:
        pump.join(timeout=5)
    return watch.stop_reason if watch.stop_reason is not None else proc.returncode


def on_hang(watch: Watch, proc: subprocess.Popen[bytes], window: float) -> None:
    path = watch.stacks_path()
    print(
        f"hyperpod-launcher: no training step for {window:.0f} s on {watch.host}: the job looks "
        f"hung; writing the Python stacks of its processes to {path}",
        file=sys.stderr,
        flush=True,
    )
    text = watch.dump_stacks(proc.pid)
    try:
        with open(path, "w") as handle:
            handle.write(text)
    except OSError as err:
        print(f"hyperpod-launcher: cannot write {path}: {err}\n{text}", file=sys.stderr)
    watch.emit(
        {
            "event": "hang",
            "attempt": watch.attempt,
            "host": watch.host,
            "window_s": window,
            "stacks": path,
        }
    )
    print(
        f"hyperpod-launcher: ending attempt {watch.attempt} with exit code {HANG_EXIT} (hang); "
        "the restart policy takes over",
        file=sys.stderr,
        flush=True,
    )


def _terminate(proc: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """Stop the command and every process below it."""
    victims = [proc.pid, *descendants(proc.pid)]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in victims:
            with contextlib.suppress(OSError):
                os.kill(pid, sig)
        deadline = time.monotonic() + grace
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        if proc.poll() is not None:
            return


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="watch one node's training processes")
    parser.add_argument("--job-dir", default="")
    parser.add_argument("--launch-id", default="")
    parser.add_argument("--efa", action="store_true", help="check NCCL's network choice")
    parser.add_argument("--mfu-inputs", default="", help="JSON: model, tokens_per_step, note")
    parser.add_argument("--poll", type=float, default=1.0, help=argparse.SUPPRESS)
    parser.add_argument("--self-delete", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    if args.command[:1] == ["--"]:
        args.command = args.command[1:]
    if args.self_delete:
        with contextlib.suppress(OSError):
            os.unlink(__file__)
    if not args.command:
        parser.error("no command to run after --")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
HPL_NODE_WATCH
  watch=(python3 "$watch_py" --self-delete --job-dir /shared/results/trn-custom --launch-id golden)
  if [ "${FI_PROVIDER:-}" = efa ]; then watch+=(--efa); fi
  watch+=(--)
fi
# --- end of the watcher block ---------------------------------------------------------------
torchrun_args+=(--rdzv-endpoint="${HPL_RDZV_HOST}:${HPL_RDZV_PORT}" --rdzv-id="$HPL_RDZV_ID")
# torchrun's per-rank copies of the output (--tee) go into this launch's folder, not the
# system's temp folder (where nothing would remove them); a read-only job folder keeps the default.
torchrun_logs=/shared/results/trn-custom/launches/golden/torchrun
if mkdir -p "$torchrun_logs" 2>/dev/null; then
  torchrun_args+=(--log-dir="$torchrun_logs")
fi
${watch[@]+"${watch[@]}"} torchrun "${torchrun_args[@]}" scripts/train.py
