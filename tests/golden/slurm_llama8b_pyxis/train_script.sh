#!/bin/bash
# Per-node training script for job llama-8b (launch golden),
# written by hyperpod-launcher 0.1.0. Every node runs it once; torchrun then starts
# 8 process(es) here and joins the c10d rendezvous.
# The backend provides HPL_NNODES, HPL_RDZV_HOST, HPL_RDZV_PORT and HPL_RDZV_ID.
set -euo pipefail

: "${HPL_NNODES:?set by the launcher}" "${HPL_RDZV_HOST:?set by the launcher}"
: "${HPL_RDZV_PORT:?set by the launcher}" "${HPL_RDZV_ID:?set by the launcher}"

export TORCH_NCCL_ASYNC_ERROR_HANDLING=1
export NCCL_SOCKET_IFNAME='^lo,docker0,veth_def_agent'
export FI_PROVIDER=efa
export FI_EFA_USE_DEVICE_RDMA=1
export NCCL_DEBUG=WARN
# torchrun places the processes; Slurm's task counts would mislead Lightning and torch.
unset SLURM_NTASKS SLURM_NTASKS_PER_NODE SLURM_NPROCS

cd /fsx/results/llama-8b/code/golden
mkdir -p /fsx/exp/llama-8b

torchrun_args=(
  --nnodes="$HPL_NNODES"
  --nproc-per-node=8
  --rdzv-backend=c10d
  --rdzv-endpoint="${HPL_RDZV_HOST}:${HPL_RDZV_PORT}"
  --rdzv-id="$HPL_RDZV_ID"
)
torchrun "${torchrun_args[@]}" examples/llama/llama_pretrain.py --config-path=/fsx/results/llama-8b --config-name=llama-8b_hydra.yaml
