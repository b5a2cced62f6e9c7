#!/bin/bash
# Entry point of the training container in every pod of a HyperPodPyTorchJob (static file
# of the chart). train_script.sh execs hyperpodrun, HyperPod's elastic agent: the training
# operator talks to its server on HPL_AGENT_PORT and assigns the ranks; no MASTER_ADDR here.
set -euo pipefail

: "${NNODES:?set by the chart}" "${NPROC_PER_NODE:?set by the chart}"
: "${HPL_SCRIPTS_DIR:?set by the chart}" "${HPL_POD_JOB_DIR:?set by the chart}"

if ! command -v hyperpodrun >/dev/null 2>&1; then
  echo "hyperpodrun is not in the image: install the HyperPod elastic agent in it" \
    "(pip install hyperpod-elastic-agent)" >&2
  exit 127
fi

# Attempts of this pod's training container: the job folder is an emptyDir, which outlives
# a container restart, so a restarted container counts on and train_script.sh resumes from
# the newest checkpoint. Restarts inside hyperpodrun (process level) rerun the same command.
attempts_file="$HPL_POD_JOB_DIR/.hpl-attempts"
HPL_RESTART_COUNT="$(cat "$attempts_file" 2>/dev/null || echo 0)"
echo "$((HPL_RESTART_COUNT + 1))" >"$attempts_file"
export HPL_RESTART_COUNT

if [[ -f "$HPL_SCRIPTS_DIR/pre_script.sh" ]]; then
  # shellcheck source=/dev/null
  source "$HPL_SCRIPTS_DIR/pre_script.sh"
fi

if [[ ! -f "$HPL_SCRIPTS_DIR/post_script.sh" ]]; then
  exec bash "$HPL_SCRIPTS_DIR/train_script.sh"  # hyperpodrun gets the pod's SIGTERM
fi

# A post script runs after training: keep this shell, and pass SIGTERM on to the agent.
bash "$HPL_SCRIPTS_DIR/train_script.sh" &
agent=$!
trap 'kill -TERM "$agent" 2>/dev/null' TERM INT
status=0
wait "$agent" || status=$?
if kill -0 "$agent" 2>/dev/null; then  # wait returned for the signal: wait for the agent
  wait "$agent" || status=$?
fi
export HPL_TRAIN_EXIT_CODE="$status"
# shellcheck source=/dev/null
source "$HPL_SCRIPTS_DIR/post_script.sh" || echo "post_script failed (exit $?)" >&2
exit "$status"
