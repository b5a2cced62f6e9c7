#!/bin/bash
# Per-node training script for job allreduce-smoke (launch golden),
# written by hyperpod-launcher 0.1.0. Every node runs it once; torchrun then starts
# 2 process(es) here and joins the c10d rendezvous.
# The backend provides HPL_NNODES, HPL_RDZV_HOST, HPL_RDZV_PORT, HPL_RDZV_ID and
# HPL_RESTART_COUNT (0 on the first attempt).
set -euo pipefail

: "${HPL_NNODES:?set by the launcher}" "${HPL_RDZV_HOST:?set by the launcher}"
: "${HPL_RDZV_PORT:?set by the launcher}" "${HPL_RDZV_ID:?set by the launcher}"

export NCCL_DEBUG=WARN
# torchrun places the processes; Slurm's task counts would mislead Lightning and torch.
unset SLURM_NTASKS SLURM_NTASKS_PER_NODE SLURM_NPROCS

cd /results/allreduce-smoke

# Every output line starts with its global rank: `hyperpod-launch logs --rank N` picks them.
# shellcheck disable=SC2016  # torchrun fills in ${rank}, not the shell
export TORCHELASTIC_LOG_LINE_PREFIX_TEMPLATE='[rank${rank}]:'
torchrun_args=(
  --tee=3
  --nnodes="$HPL_NNODES"
  --nproc-per-node=2
  --rdzv-backend=c10d
)
torchrun_args+=(--rdzv-endpoint="${HPL_RDZV_HOST}:${HPL_RDZV_PORT}" --rdzv-id="$HPL_RDZV_ID")
# torchrun's per-rank copies of the output (--tee) go into this launch's folder, not the
# system's temp folder (where nothing would remove them); a read-only job folder keeps the default.
torchrun_logs=/results/allreduce-smoke/launches/golden/torchrun
if mkdir -p "$torchrun_logs" 2>/dev/null; then
  torchrun_args+=(--log-dir="$torchrun_logs")
fi
torchrun "${torchrun_args[@]}" <repo>/hyperpod_launcher/examples/allreduce_smoke.py
