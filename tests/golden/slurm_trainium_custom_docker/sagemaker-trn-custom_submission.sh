#!/bin/bash
#SBATCH --job-name=sagemaker-trn-custom
#SBATCH --nodes=4
#SBATCH --ntasks-per-node=1
#SBATCH --output=/shared/results/trn-custom/log-%x_%j.out
#SBATCH --open-mode=append
#SBATCH --error=/shared/results/trn-custom/log-%x_%j.err
#SBATCH --time=02:00:00
#SBATCH --mem=64G
#SBATCH --constraint=trn1
#SBATCH --exclude=node7
#SBATCH --cpus-per-task=8
#SBATCH --reservation=trn-res
# Batch script for job trn-custom (launch golden),
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
if [ ! -d /shared/results/trn-custom/code/golden ]; then
  echo 'error: the code checkout /shared/results/trn-custom/code/golden is missing; launch without dry_run=true, or with cluster.slurm_create_submission_file_only=true, to check it out' >&2
  exit 1
fi

# The container mounts these read-write; they must exist before it starts.
mkdir -p /shared/results/trn-custom

# Every node must see the job folder: it holds the scripts, the recipe and the code.
if ! srun --ntasks-per-node=1 test -r /shared/results/trn-custom/launches/golden/train_script.sh; then
  echo 'error: /shared/results/trn-custom/launches/golden/train_script.sh is not readable on every node; put base_results_dir on a filesystem all nodes share' >&2
  exit 1
fi

status=0
srun --kill-on-bad-exit=1 --cpus-per-task=8 --mpi=pmi2 bash /shared/results/trn-custom/launches/golden/docker_node.sh || status=$?
# A step ended by SIGKILL skips its nodes' traps: remove the containers it left behind.
srun --ntasks-per-node=1 --kill-on-bad-exit=0 bash /shared/results/trn-custom/launches/golden/docker_node.sh --remove-all || true
exit "$status"
