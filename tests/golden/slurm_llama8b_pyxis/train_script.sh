#!/bin/bash
# Per-node training script for job llama-8b (launch golden),
# written by hyperpod-launcher 0.1.0. Every node runs it once; torchrun then starts
# 8 process(es) here and joins the c10d rendezvous.
# The backend provides HPL_NNODES, HPL_RDZV_HOST, HPL_RDZV_PORT, HPL_RDZV_ID and
# HPL_RESTART_COUNT (0 on the first attempt).
set -euo pipefail

: "${HPL_NNODES:?set by the launcher}" "${HPL_RDZV_HOST:?set by the launcher}"
: "${HPL_RDZV_PORT:?set by the launcher}" "${HPL_RDZV_ID:?set by the launcher}"

export TORCH_NCCL_ASYNC_ERROR_HANDLING=1
export NCCL_SOCKET_IFNAME='^lo,docker0,veth_def_agent'
export NCCL_IGNORE_DISABLED_P2P=1
export TORCH_DIST_INIT_BARRIER=1
export CUDA_DEVICE_MAX_CONNECTIONS=1
export FI_PROVIDER=efa
export FI_EFA_USE_DEVICE_RDMA=1
export NCCL_DEBUG=WARN
# torchrun places the processes; Slurm's task counts would mislead Lightning and torch.
unset SLURM_NTASKS SLURM_NTASKS_PER_NODE SLURM_NPROCS

cd /fsx/results/llama-8b/code/golden
# The checkout's training code comes ahead of the image's installed copy.
if [ -d src/hyperpod_nemo_adapter ]; then
  export PYTHONPATH="${PWD}/src${PYTHONPATH:+:${PYTHONPATH}}"
else
  echo "warning: the checkout has no src/hyperpod_nemo_adapter; the image's installed copy runs" >&2
fi
mkdir -p /fsx/exp/llama-8b

# Every output line starts with its global rank: `hyperpod-launch logs --rank N` picks them.
# shellcheck disable=SC2016  # torchrun fills in ${rank}, not the shell
export TORCHELASTIC_LOG_LINE_PREFIX_TEMPLATE='[rank${rank}]:'
torchrun_args=(
  --tee=3
  --nnodes="$HPL_NNODES"
  --nproc-per-node=8
  --rdzv-backend=c10d
)
torchrun_args+=(--rdzv-endpoint="${HPL_RDZV_HOST}:${HPL_RDZV_PORT}" --rdzv-id="$HPL_RDZV_ID")
# torchrun's per-rank copies of the output (--tee) go into this launch's folder, not the
# system's temp folder (where nothing would remove them); a read-only job folder keeps the default.
torchrun_logs=/fsx/results/llama-8b/launches/golden/torchrun
if mkdir -p "$torchrun_logs" 2>/dev/null; then
  torchrun_args+=(--log-dir="$torchrun_logs")
fi
# A restarted attempt (HPL_RESTART_COUNT > 0) resumes from the newest complete checkpoint
# (adapter layout: /fsx/exp/llama-8b/checkpoints/sharded/step_*).
resume_args=()
resume_folder=/fsx/exp/llama-8b/checkpoints/sharded
if [ "${HPL_RESTART_COUNT:-0}" -gt 0 ]; then
  latest="$(
    for candidate in "$resume_folder"/step_*; do
      if [ ! -e "$candidate" ]; then continue; fi
      # A checkpoint counts once it holds its shards (tp*_ep*).
      if ! compgen -G "${candidate}/tp*_ep*" >/dev/null; then continue; fi
      step="${candidate##*_}"
      if [[ "$step" =~ ^[0-9]+$ ]]; then echo "$step $candidate"; fi
    done | LC_ALL=C sort -n | tail -n 1 | cut -d' ' -f2-
  )"
  if [ -n "$latest" ]; then
    echo "restart ${HPL_RESTART_COUNT}: resuming from ${latest}"
    resume_args=(exp_manager.resume_from_checkpoint="${latest}")
  else
    echo "restart ${HPL_RESTART_COUNT}: no complete checkpoint in ${resume_folder} yet; starting over"
  fi
fi
torchrun "${torchrun_args[@]}" examples/llama/llama_pretrain.py --config-path=/fsx/results/llama-8b/launches/golden --config-name=llama-8b_hydra.yaml "${resume_args[@]}"
