#!/bin/bash
# Per-node training script for job allreduce-smoke (launch golden),
# written by hyperpod-launcher 0.1.0. Every node runs it once; torchrun then starts
# 2 process(es) here and joins the c10d rendezvous.
# The backend provides HPL_NNODES, HPL_RDZV_HOST, HPL_RDZV_PORT and HPL_RDZV_ID.
set -euo pipefail

: "${HPL_NNODES:?set by the launcher}" "${HPL_RDZV_HOST:?set by the launcher}"
: "${HPL_RDZV_PORT:?set by the launcher}" "${HPL_RDZV_ID:?set by the launcher}"

export NCCL_DEBUG=WARN
# torchrun places the processes; Slurm's task counts would mislead Lightning and torch.
unset SLURM_NTASKS SLURM_NTASKS_PER_NODE SLURM_NPROCS

cd /results/allreduce-smoke

torchrun_args=(
  --nnodes="$HPL_NNODES"
  --nproc-per-node=2
  --rdzv-backend=c10d
  --rdzv-endpoint="${HPL_RDZV_HOST}:${HPL_RDZV_PORT}"
  --rdzv-id="$HPL_RDZV_ID"
)
torchrun "${torchrun_args[@]}" <repo>/hyperpod_launcher/examples/allreduce_smoke.py
