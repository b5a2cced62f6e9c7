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
torchrun_args+=(--rdzv-endpoint="${HPL_RDZV_HOST}:${HPL_RDZV_PORT}" --rdzv-id="$HPL_RDZV_ID")
# torchrun's per-rank copies of the output (--tee) go into this launch's folder, not the
# system's temp folder (where nothing would remove them); a read-only job folder keeps the default.
torchrun_logs=/shared/results/trn-custom/launches/golden/torchrun
if mkdir -p "$torchrun_logs" 2>/dev/null; then
  torchrun_args+=(--log-dir="$torchrun_logs")
fi
torchrun "${torchrun_args[@]}" scripts/train.py
