#!/usr/bin/env bash
# Run the opt-in GPU suite (tests/gpu) on a machine with CUDA and write a short results file.
#
#   bash scripts/gpu_check.sh WHEEL_DIR [RESULTS_FILE [PYTEST_ARGS...]]
#
# WHEEL_DIR holds the wheels this machine's python lacks (e.g. hydra-core, omegaconf,
# antlr4-python3-runtime, trl, datasets, deepspeed built with DS_BUILD_OPS=0, bitsandbytes);
# they are installed without an index or dependencies into a folder of their own, so the
# machine's torch and CUDA stay as they are. The checkout itself runs from its folder.
# RESULTS_FILE (default: gpu-results.md) gets the date, the versions, each test's outcome,
# the loss curves, steps per second and the GPU memory peak. PYTEST_ARGS (e.g. `-k open_ft`)
# narrow the run to some of the tests.
set -euo pipefail

repo="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)"
wheels="${1:?usage: gpu_check.sh WHEEL_DIR [RESULTS_FILE]}"
results="$(realpath -m "${2:-gpu-results.md}")"
pytest_args=("${@:3}")
python="${PYTHON:-python3}"
work="$(mktemp -d)"
trap 'kill "${smi_pid:-0}" 2>/dev/null || true; rm -rf "$work"' EXIT

shopt -s nullglob
packages=("$wheels"/*.whl)
if ((${#packages[@]})); then
  "$python" -m pip install -q --no-index --no-deps --target "$work/site" "${packages[@]}"
fi
export PYTHONPATH="$work/site:$repo${PYTHONPATH:+:$PYTHONPATH}"
# Single-host NCCL without NVLink multicast; no hub downloads (the tests build their models).
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1
# Always from the device itself: a preset such as "9.0a" (arch-specific suffix) breaks
# DeepSpeed's op builder, which parses each entry as major.minor numbers.
TORCH_CUDA_ARCH_LIST="$("$python" -c \
  'import torch; print("%d.%d" % torch.cuda.get_device_capability())')"
export TORCH_CUDA_ARCH_LIST
export HPL_GPU_TESTS=1 HPL_GPU_RESULTS="$work/runs.jsonl"

nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 500 >"$work/mem.log" &
smi_pid=$!
status=0
(cd "$repo" && "$python" -m pytest -q -rA -p no:cacheprovider --junitxml="$work/junit.xml" \
  tests/gpu "${pytest_args[@]}") | tee "$work/pytest.log" || status=$?
kill "$smi_pid" 2>/dev/null || true

"$python" - "$work" "$results" <<'PY'
import json, subprocess, sys, time, xml.etree.ElementTree as ET
from importlib import metadata
from pathlib import Path

work, out = Path(sys.argv[1]), Path(sys.argv[2])
import torch

def version(name):
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"

gpu = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
                     capture_output=True, text=True).stdout.strip()
lines = [f"# GPU check: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", "",
         f"- GPU: {gpu}",
         f"- torch {torch.__version__}, CUDA {torch.version.cuda}, NCCL "
         f"{'.'.join(map(str, torch.cuda.nccl.version()))}",
         "- " + ", ".join(f"{n} {version(n)}" for n in
                          ("transformers", "trl", "peft", "accelerate", "datasets", "deepspeed",
                           "bitsandbytes")), ""]
mem = [int(x) for x in (work / "mem.log").read_text().split() if x.isdigit()]
lines.append(f"- GPU memory peak: {max(mem) if mem else 'n/a'} MiB")
lines += ["", "| test | outcome | seconds |", "|---|---|---|"]
for case in ET.parse(work / "junit.xml").getroot().iter("testcase"):
    outcome = next((c.tag for c in case if c.tag in ("failure", "error", "skipped")), "passed")
    lines.append(f"| {case.get('name')} | {outcome} | {float(case.get('time', 0)):.1f} |")
runs = work / "runs.jsonl"
if runs.exists():
    lines += ["", "| run | loss or reward (first -> last) | steps/s |", "|---|---|---|"]
    for row in map(json.loads, runs.read_text().splitlines()):
        losses = row.get("losses") or []
        losses = losses or row.get("rewards") or []  # GRPO: the mean reward per step
        curve = f"{losses[0]:.3f} -> {losses[-1]:.3f} ({len(losses)} steps)" if losses else "-"
        lines.append(f"| {row['test']} | {curve} | {row.get('steps_per_s') or '-'} |")
out.write_text("\n".join(lines) + "\n")
print(f"results: {out}")
PY
exit "$status"
