"""Benchmark on one host with N >= 2 GPUs: scaling of open SFT, DeepSpeed ZeRO-2 against ZeRO-3,
telemetry across ranks and a hang on N GPUs, all through `python main.py cluster=local`.

    python bench/multi_gpu.py [--steps 30] [--gpus N]        # needs N >= 2 GPUs here
    python bench/multi_gpu.py --plan [--gpus 8]                # CPU: dry-run every launch

The model and settings are `bench/open_sft_mfu.py`'s performance case (the ~1.1B Llama-shaped
model, 2048 tokens, micro batch 8 per GPU, the recipe defaults). Cases: DDP and FSDP full
shard on 1 GPU and on N GPUs, ZeRO-2 and ZeRO-3 on N GPUs, and a custom-script entry where one
rank stops stepping. Each run is detached; `status --json` is read while it runs and after it.

Reported per case: tokens/s per GPU (the benchmark's own count: micro batch x sequence x GPUs
per optimizer step, over the median step interval after warm-up), MFU from that, MFU as
`status --json` reports it (known where the host matches a catalog instance type, which gives
the peak), the tokens `status` counted against the benchmark's, the peak memory per GPU
(`nvidia-smi`, sampled) and rank 0's peak allocated memory; for DDP and FSDP the scaling
efficiency (N-GPU tokens/s over N x 1-GPU tokens/s). NCCL's transport lines of each N-GPU run
go to a log beside the results. The hang case checks that the watchdog trips, that its stacks
file holds every rank's stack and that the restart is taken.

`--plan` runs each launch with `dry_run=true` (with the GPUs hidden, as CPU processes) and
checks the job it renders: its process count and its strategy as the entry reads it.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench import open_sft_mfu as perf  # noqa: E402
from tests import tiny_lm  # noqa: E402

if TYPE_CHECKING:
    from hyperpod_launcher.config.instances import InstanceType

RECIPE = "fine-tuning/hf/open_causal_lm_gpu_sft"
HANG_ENTRY = REPO / "tests" / "fixtures" / "scripts" / "stall_one_rank.py"
HANG_EXIT = 75
HANG_WINDOW_S = 20
NCCL_TRANSPORT = re.compile(r"NCCL INFO .*(?: via |Using network|NET/|Connected all )")
STRATEGIES = ("ddp", "fsdp", "zero2", "zero3")
MFU_TOLERANCE = 0.02  # relative
PLAN_CARD = "NVIDIA H100 80GB HBM3"


@dataclass(frozen=True)
class Case:
    name: str
    strategy: str  # ddp | fsdp | zero2 | zero3 | hang
    gpus: int
    overrides: tuple[str, ...] = field(default=())


def strategy_overrides(strategy: str, gpus: int) -> tuple[str, ...]:
    if strategy in ("ddp", "fsdp"):
        return (f"recipes.model.strategy={strategy}",)
    stage = int(strategy.removeprefix("zero"))
    return (
        "recipes.model.strategy=deepspeed",
        "+recipes.deepspeed.config_file=ds_config.json",
        f"+recipes.deepspeed.zero_stage={stage}",
        f"+recipes.deepspeed.micro_batch_size={perf.MICRO}",
        f"+recipes.deepspeed.global_batch_size={perf.MICRO * gpus}",
        "+recipes.deepspeed.precision=bf16",
    )


def instance_for(card: str, gpus: int | None = None) -> InstanceType | None:
    """The catalog's instance type with this card (and GPU count): its peak gives `status` its
    MFU."""
    from hyperpod_launcher.config import instances

    for row in instances.INSTANCES.values():
        if row.accelerator == "gpu" and row.model in card and gpus in (None, row.devices):
            return row
    return None


def peak_flops(card: str) -> float:
    """The card's dense bf16 peak from the catalog (the one `status` uses), else the MFU
    benchmark's."""
    row = instance_for(card)
    return row.peak_bf16_tflops * 1e12 if row else perf.PEAK_BF16


def cases(gpus: int, steps: int, model: Path, data: Path, card: str) -> list[Case]:
    new = perf.SETTINGS["new"]
    sft = (
        f"recipes={RECIPE}",
        f"recipes.model.hf_model_name_or_path={model}",
        f"recipes.model.data.train_dir={data}",
        f"recipes.model.max_context_width={perf.SEQ}",
        f"recipes.model.max_position_embeddings={perf.SEQ}",
        f"recipes.model.micro_batch_size={perf.MICRO}",
        f"recipes.model.optim.name={new['optim']}",
        f"recipes.model.gradient_checkpointing={str(new['gradient_checkpointing']).lower()}",
        f"recipes.trainer.max_steps={steps}",
        "recipes.trainer.log_every_n_steps=1",
        "recipes.exp_manager.save_every_n_steps=0",
        "recipes.exp_manager.tensorboard=false",
        "env_vars.NCCL_DEBUG=INFO",
    )
    found = []
    for strategy, count in [
        ("ddp", 1),
        ("fsdp", 1),
        ("ddp", gpus),
        ("fsdp", gpus),
        ("zero2", gpus),
        ("zero3", gpus),
    ]:
        instance = instance_for(card, count)
        found.append(
            Case(
                f"mgpu-{strategy}-x{count}",
                strategy,
                count,
                (
                    *sft,
                    f"recipes.trainer.devices={count}",
                    *strategy_overrides(strategy, count),
                    *((f"instance_type={instance.name}",) if instance else ()),
                ),
            )
        )
    hang = (
        f"training_cfg.entry_script={HANG_ENTRY}",
        f"training_cfg.run.ntasks_per_node={gpus}",
        f"+env_vars.HPL_HANG_TIMEOUT={HANG_WINDOW_S}",
        "max_restarts=1",
    )
    found.append(Case(f"mgpu-hang-x{gpus}", "hang", gpus, hang))
    return found


def launch_argv(case: Case, base: Path) -> list[str]:
    name_key = "training_cfg.run.name" if case.strategy == "hang" else "recipes.run.name"
    return [
        sys.executable,
        str(REPO / "main.py"),
        "cluster=local",
        f"base_results_dir={base}",
        f"{name_key}={case.name}",
        *case.overrides,
    ]


def job_env(state: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, **tiny_lm.OFFLINE_ENV, "HPL_STATE_DIR": str(state), **extra}
    env["PYTHONPATH"] = f"{REPO}{os.pathsep}{env.get('PYTHONPATH', '')}"
    return env


# -- the plan: every launch as a dry run ------------------------------------------------------
def plan(gpus: int, steps: int, root: Path, card: str) -> int:
    """Dry-run each launch with the GPUs hidden (the processes as CPU processes) and check the
    job it renders. Returns the number of launches that failed."""
    model = root / "model"
    model.mkdir(parents=True, exist_ok=True)
    data = root / "text.jsonl"
    data.write_text(json.dumps({"text": "a b c"}) + "\n")
    env = job_env(root / "state", CUDA_VISIBLE_DEVICES="")
    failed = 0
    for case in cases(gpus, steps, model, data, card):
        argv = launch_argv(case, root / "jobs")
        shown = " ".join(["python", "main.py", *argv[2:]])
        print(f"{case.name}: {shown}", flush=True)
        done = subprocess.run(
            [*argv, f"cpu_processes={case.gpus}", "dry_run=true"],
            capture_output=True,
            text=True,
            env=env,
            cwd=REPO,
            check=False,
        )
        problem = (
            (done.stdout + done.stderr).strip()
            if done.returncode
            else check_rendered(root / "jobs" / case.name, case)
        )
        print(f"  {'FAILED: ' + problem if problem else 'ok'}", flush=True)
        failed += bool(problem)
    return failed


def check_rendered(job: Path, case: Case) -> str:
    """What is wrong with a rendered job for this case ('' when nothing is)."""
    record = json.loads((job / "job.json").read_text())
    if record["procs_per_node"] != case.gpus:
        return f"job.json: procs_per_node {record['procs_per_node']}, want {case.gpus}"
    script = (job / "train_script.sh").read_text()
    if f"--nproc-per-node={case.gpus}\n" not in script:
        return f"train_script.sh does not start torchrun with --nproc-per-node={case.gpus}"
    if case.strategy == "hang":
        return "" if str(HANG_ENTRY) in script else "train_script.sh does not run the hang entry"
    recipe = (job / f"{case.name}_hydra.yaml").read_text()
    want = "deepspeed" if case.strategy.startswith("zero") else case.strategy
    if f"\n  strategy: {want}\n" not in recipe:
        return f"{case.name}_hydra.yaml: model.strategy is not {want}"
    if want == "deepspeed":
        ds = json.loads((job / "ds_config.json").read_text())
        stage = ds["zero_optimization"]["stage"]
        if stage != int(case.strategy.removeprefix("zero")):
            return f"ds_config.json: zero stage {stage}"
    return ""


# -- the runs -----------------------------------------------------------------------------
class GpuMemory:
    """The most memory `nvidia-smi` saw in use on each GPU while it ran (MiB)."""

    def __init__(self) -> None:
        self.peak: dict[int, int] = {}
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> GpuMemory:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.done.set()
        self.thread.join()

    def _sample(self) -> None:
        query = ["nvidia-smi", "--query-gpu=index,memory.used", "--format=csv,noheader,nounits"]
        while not self.done.wait(1.0):
            out = subprocess.run(query, capture_output=True, text=True, check=False).stdout
            for line in out.splitlines():
                index, used = (int(x) for x in line.split(","))
                self.peak[index] = max(self.peak.get(index, 0), used)


def status(name: str, env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, str(REPO / "main.py"), "status", name, "--json"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        check=False,
    )
    return json.loads(done.stdout) if done.returncode == 0 else {}


def run_case(case: Case, base: Path, env: dict[str, str]) -> dict[str, Any]:
    """Launch detached, read `status --json` while it runs, and return what it left."""
    argv = [*launch_argv(case, base), "wait=false"]
    print(f"{case.name}: {' '.join(['python', 'main.py', *argv[2:]])}", flush=True)
    with GpuMemory() as memory:
        started = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=REPO)
        if started.returncode != 0:
            raise SystemExit(f"{case.name}: launch failed:\n{started.stdout}{started.stderr}")
        during: dict[str, Any] = {}
        while True:
            now = status(case.name, env)
            if now.get("state") != "running":
                break
            if (now.get("progress") or {}).get("step"):
                during = now
            time.sleep(3)
    job = base / case.name
    log = "".join(p.read_text(errors="replace") for p in sorted(job.glob("log-*.out")))
    return {
        "after": now,
        "during": during,
        "log": log,
        "job": job,
        "gpu_peak_gib": {i: round(m / 1024, 2) for i, m in sorted(memory.peak.items())},
    }


def step_lines(log: str) -> list[dict[str, Any]]:
    from hyperpod_launcher.telemetry.node_watch import parse_line

    found = (parse_line(line) for line in log.splitlines())
    return [r for r in found if r is not None and r.get("event", "step") == "step"]


def training_row(case: Case, run: dict[str, Any], fpt: float, peak: float) -> dict[str, Any]:
    steps = [r for r in step_lines(run["log"]) if r["step"] >= perf.WARM]
    gaps = [b["time"] - a["time"] for a, b in itertools.pairwise(steps)]
    if run["after"].get("state") != "succeeded" or not gaps:
        raise SystemExit(f"{case.name}: the run failed:\n{run['log'][-4000:]}")
    step_s = statistics.median(gaps)
    per_gpu = perf.MICRO * perf.SEQ / step_s
    mfu = per_gpu * fpt / peak
    return {
        "case": case.name,
        "strategy": case.strategy,
        "gpus": case.gpus,
        "step_s": round(step_s, 4),
        "tokens_per_s_per_gpu": round(per_gpu),
        "mfu": round(mfu, 4),
        "status_during": status_check(run["during"], case.gpus, mfu),
        "status_after": status_check(run["after"], case.gpus, mfu),
        "peak_gpu_memory_gib": {i: m for i, m in run["gpu_peak_gib"].items() if i < case.gpus},
        "rank0_peak_allocated_gib": steps[-1].get("memory_gib"),
    }


def status_check(answer: dict[str, Any], gpus: int, mfu: float) -> dict[str, Any]:
    """What `status --json` said at one moment against the benchmark's own figures: the
    tokens of the steps it reached (each step's once across ranks) and the MFU."""
    figures = answer.get("progress") or {}
    step, tokens, status_mfu = figures.get("step"), figures.get("tokens"), figures.get("mfu")
    trained = perf.MICRO * perf.SEQ * gpus * step if step else None
    return {
        "step": step,
        "tokens": tokens,
        "tokens_trained": trained,
        "tokens_counted_once": trained is not None and tokens == trained,
        "mfu": None if status_mfu is None else round(status_mfu, 4),
        "mfu_within_2pct": None
        if status_mfu is None
        else abs(status_mfu - mfu) <= MFU_TOLERANCE * mfu,
    }


def hang_row(case: Case, run: dict[str, Any]) -> dict[str, Any]:
    after = run["after"]
    stacks = sorted(Path(run["job"]).glob("stacks-*-attempt*.txt"))
    ranks_in = [
        sorted({int(m) for m in re.findall(r"^\[rank(\d+)\]:.*File ", p.read_text(), re.M)})
        for p in stacks
    ]
    return {
        "case": case.name,
        "gpus": case.gpus,
        "exit_code": after.get("exit_code"),
        "tripped": after.get("exit_code") == HANG_EXIT,
        "attempts": (after.get("progress") or {}).get("attempts"),
        "restart_taken": "restarting" in run["log"],
        "stacks_files": [p.name for p in stacks],
        "ranks_with_stacks": ranks_in,
        "every_rank_has_a_stack": bool(stacks)
        and all(r == list(range(case.gpus)) for r in ranks_in),
        "causes": after.get("causes"),
    }


def scaling(rows: list[dict[str, Any]], gpus: int) -> dict[str, float]:
    """N-GPU tokens/s over N x 1-GPU tokens/s, that is the ratio of the per-GPU rates."""
    by = {(r["strategy"], r["gpus"]): r["tokens_per_s_per_gpu"] for r in rows}
    return {s: round(by[(s, gpus)] / by[(s, 1)], 3) for s in ("ddp", "fsdp")}


def zero3_over_zero2(rows: list[dict[str, Any]]) -> dict[str, float]:
    """ZeRO-3's throughput and highest per-GPU memory over ZeRO-2's (on N GPUs)."""
    by = {r["strategy"]: r for r in rows if r["strategy"] in ("zero2", "zero3")}
    most = {s: max(r["peak_gpu_memory_gib"].values(), default=0.0) for s, r in by.items()}
    speed = by["zero3"]["tokens_per_s_per_gpu"] / by["zero2"]["tokens_per_s_per_gpu"]
    memory = most["zero3"] / most["zero2"] if most["zero2"] else float("nan")
    return {"tokens_per_s": round(speed, 3), "peak_gpu_memory": round(memory, 3)}


def version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def measure(gpus: int, steps: int, out_dir: Path) -> None:
    import torch

    card = torch.cuda.get_device_name(0)
    root = Path(tempfile.mkdtemp(prefix="multi-gpu-"))
    model, data, params = perf.build(root, perf.HIDDEN, perf.LAYERS)
    fpt = 6 * params + 12 * perf.LAYERS * perf.HIDDEN * perf.SEQ
    env = job_env(root / "state")
    rows, hang, nccl = [], {}, []
    for case in cases(gpus, steps, model, data, card):
        run = run_case(case, root / "jobs", env)
        if case.strategy == "hang":
            hang = hang_row(case, run)
        else:
            rows.append(training_row(case, run, fpt, peak_flops(card)))
            if case.gpus > 1:
                nccl += [f"# {case.name}"]
                nccl += [x for x in run["log"].splitlines() if NCCL_TRANSPORT.search(x)]
        print(json.dumps(hang if case.strategy == "hang" else rows[-1]), flush=True)
    slug = re.sub(r"[^a-z0-9]+", "_", card.lower()).strip("_")
    out_dir.mkdir(parents=True, exist_ok=True)
    nccl_log = out_dir / f"multi_gpu_nccl_{slug}_x{gpus}.log"
    nccl_log.write_text("\n".join(nccl) + "\n")
    result = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "gpu": card,
        "gpus": gpus,
        "driver": subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.splitlines()[:1],
        "versions": {
            n: version(n)
            for n in ("torch", "transformers", "trl", "accelerate", "deepspeed", "liger-kernel")
        },
        "model": {"parameters_without_embedding": params, "flops_per_token": fpt},
        "peak_bf16_flops": peak_flops(card),
        "steps": steps,
        "rows": rows,
        "scaling_efficiency": scaling(rows, gpus),
        "zero3_over_zero2": zero3_over_zero2(rows),
        "hang": hang,
        "nccl_log": nccl_log.name,
    }
    out = out_dir / f"multi_gpu_{slug}_x{gpus}.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"results: {out}")


def gpu_count() -> int:
    from hyperpod_launcher.spec import local_gpus

    return local_gpus.count()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plan", action="store_true", help="dry-run every launch (CPU)")
    parser.add_argument("--gpus", type=int, help="N (default: every GPU here; --plan: 8)")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--plan-dir", help="--plan: where the dry runs write (default: a temp)")
    parser.add_argument("--card", default=PLAN_CARD, help="--plan: the GPU it plans for")
    parser.add_argument("--out-dir", default=str(REPO / "bench" / "results"))
    args = parser.parse_args()
    if args.plan:
        gpus = args.gpus or 8
        if gpus < 2:
            parser.error(f"--gpus {gpus}: the plan is for 2 or more GPUs")
        root = Path(args.plan_dir or tempfile.mkdtemp(prefix="multi-gpu-plan-"))
        failed = plan(gpus, args.steps, root, args.card)
        print(f"plan for {gpus} GPUs: {'all launches ok' if not failed else f'{failed} failed'}")
        sys.exit(1 if failed else 0)
    here = gpu_count()
    gpus = args.gpus or here
    if here < 2 or gpus < 2 or gpus > here:
        print(
            f"error: bench/multi_gpu.py needs 2 or more GPUs on this host (found {here}"
            + (f", asked for {args.gpus}" if args.gpus else "")
            + "); `--plan --gpus N` dry-runs its launches without them",
            file=sys.stderr,
        )
        sys.exit(2)
    if shutil.which("nvidia-smi") is None:
        print(
            "error: bench/multi_gpu.py samples memory with nvidia-smi; not found", file=sys.stderr
        )
        sys.exit(2)
    measure(gpus, args.steps, Path(args.out_dir))


if __name__ == "__main__":
    main()
