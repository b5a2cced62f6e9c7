#!/bin/bash
#SBATCH --job-name=sagemaker-llama-8b
#SBATCH --nodes=16
#SBATCH --ntasks-per-node=1
#SBATCH --output=/fsx/results/llama-8b/log-%x_%j.out
#SBATCH --open-mode=append
#SBATCH --time=6-00:00:00
#SBATCH --mem=0
#SBATCH --partition=gpu
#SBATCH --account=ml-team
#SBATCH --qos=high
#SBATCH --dependency=afterok:1234
#SBATCH --comment="llama 8b # first run"
#SBATCH --exclusive
#SBATCH --requeue
# Batch script for job llama-8b (launch golden),
# written by hyperpod-launcher 0.1.0.
set -euo pipefail

# The first node hosts the c10d rendezvous, on a port and id unique to this Slurm job.
HPL_RDZV_HOST="$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)"
export HPL_RDZV_HOST
export HPL_RDZV_PORT="$((20000 + SLURM_JOB_ID % 10000))"
export HPL_RDZV_ID="hpl-${SLURM_JOB_ID}"
export HPL_NNODES="$SLURM_JOB_NUM_NODES"
export HPL_RESTART_COUNT="${SLURM_RESTART_COUNT:-0}"

# The code is checked out at launch; a dry run writes these scripts without it.
if [ ! -d /fsx/results/llama-8b/code/golden ]; then
  echo 'error: the code checkout /fsx/results/llama-8b/code/golden is missing; launch without dry_run=true, or with cluster.slurm_create_submission_file_only=true, to check it out' >&2
  exit 1
fi

# The container mounts these read-write; they must exist before it starts.
mkdir -p /fsx/results/llama-8b /fsx/exp/llama-8b

# Every node must see the job folder: it holds the scripts, the recipe and the code.
if ! srun --ntasks-per-node=1 test -r /fsx/results/llama-8b/launches/golden/train_script.sh; then
  echo 'error: /fsx/results/llama-8b/launches/golden/train_script.sh is not readable on every node; put base_results_dir on a filesystem all nodes share' >&2
  exit 1
fi

# A failed attempt restarts in this allocation (max_restarts=2); every
# attempt resumes from the newest checkpoint. Node failures are Slurm's to requeue (--requeue).
attempt=0
while true; do
  export HPL_RESTART_COUNT="$(( ${SLURM_RESTART_COUNT:-0} + attempt ))"
  status=0
  srun --kill-on-bad-exit=1 --auto-resume=1 '--container-image=nvcr.io#nvidia/pytorch:24.01-py3' --container-mounts=/fsx/data:/data:ro,/fsx/results/llama-8b:/fsx/results/llama-8b,/fsx/exp/llama-8b:/fsx/exp/llama-8b --no-container-mount-home bash /fsx/results/llama-8b/launches/golden/train_script.sh || status=$?
  if [ "$status" -eq 0 ] || [ "$attempt" -ge 2 ]; then
    break
  fi
  attempt=$((attempt + 1))
  echo "hyperpod-launcher: attempt ${attempt} failed with exit status ${status}; restarting (${attempt} of 2)" >&2
done
exit "$status"
