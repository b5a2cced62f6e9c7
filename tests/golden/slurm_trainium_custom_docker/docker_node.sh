#!/bin/bash
# Runs this node's share of job trn-custom (launch golden) in a docker
# container, written by hyperpod-launcher 0.1.0. The container is named per job, node
# and attempt and is removed however the step ends: its own exit, srun ending it after a failure
# on another node, a cancel or the time limit (Slurm's SIGTERM, then SIGKILL after KillWait;
# the batch script removes what a SIGKILL left behind with --remove-all).
set -uo pipefail

label="hyperpod-launcher.job=${SLURM_JOB_ID}"
if [ "${1:-}" = "--remove-all" ]; then
  docker ps -aq --filter "label=${label}" | xargs -r docker rm -f >/dev/null
  exit 0
fi

# One line, then a moment for srun to forward it before --kill-on-bad-exit ends every node's task.
fail() { echo "error: $1" >&2; sleep 1; exit 1; }

# One pull per node before the container starts, so a missing image or credential fails here.
image=public.ecr.aws/neuron/pytorch-training-neuronx:2.1.2
if ! out="$(docker pull "$image" 2>&1)"; then
  fail "cannot pull ${image} on ${SLURMD_NODENAME}: ${out##*$'\n'}"
fi

name="hpl-${SLURM_JOB_ID}-${SLURMD_NODENAME}-${HPL_RESTART_COUNT}"
remove() { docker rm -f "$name" >/dev/null 2>&1 || true; }
trap 'remove; exit 143' TERM INT HUP
remove  # one of the same name, left by an earlier run of this job on this node

docker run --rm --init --name="$name" --label="$label" \
  --ulimit=memlock=-1 --ulimit=stack=67108864 --network=host --ipc=host --privileged --volume=/shared/results/trn-custom:/shared/results/trn-custom --env=HPL_NNODES --env=HPL_RDZV_HOST --env=HPL_RDZV_PORT --env=HPL_RDZV_ID --env=HPL_RESTART_COUNT --env=WANDB_API_KEY --ulimit=memlock=-1 \
  "$image" bash -c 'pip install -e . && exec bash /shared/results/trn-custom/launches/golden/train_script.sh' &
client=$!
wait "$client"
status=$?
trap - TERM INT HUP
remove
exit "$status"
