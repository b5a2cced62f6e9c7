#!/bin/bash
# Entry point of the `pytorch` container in every pod of the job (static file of the chart).
# The training operator sets MASTER_ADDR (<job>-master-0) and MASTER_PORT in every pod of a
# job with a Master replica; the master pod hosts the c10d rendezvous store itself.
set -euo pipefail

: "${MASTER_ADDR:?is not set: the Kubeflow training operator sets it for jobs with a Master replica}"
: "${MASTER_PORT:?is not set: the Kubeflow training operator sets it from the pytorchjob-port}"
: "${HPL_REPLICA_TYPE:?set by the chart}" "${HPL_SCRIPTS_DIR:?set by the chart}"
: "${HPL_POD_JOB_DIR:?set by the chart}"

if [[ "$HPL_REPLICA_TYPE" == "master" ]]; then
  # The master's own Service name may not resolve yet; it hosts the store on every interface.
  export HPL_RDZV_HOST="localhost"
else
  export HPL_RDZV_HOST="$MASTER_ADDR"
fi
export HPL_RDZV_PORT="$MASTER_PORT"

# Attempts of this pod's training container (max_restarts): the pod's job folder is an
# emptyDir, which outlives a container restart (restartPolicy OnFailure), so a restarted
# container counts on and train_script.sh resumes from the newest checkpoint. A pod that
# the operator recreates (ExitCode) starts again at 0.
attempts_file="$HPL_POD_JOB_DIR/.hpl-attempts-rank${RANK:-0}"
HPL_RESTART_COUNT="$(cat "$attempts_file" 2>/dev/null || echo 0)"
echo "$((HPL_RESTART_COUNT + 1))" >"$attempts_file"
export HPL_RESTART_COUNT

if [[ -f "$HPL_SCRIPTS_DIR/pre_script.sh" ]]; then
  # shellcheck source=/dev/null
  source "$HPL_SCRIPTS_DIR/pre_script.sh"
fi

status=0
bash "$HPL_SCRIPTS_DIR/train_script.sh" || status=$?

if [[ -f "$HPL_SCRIPTS_DIR/post_script.sh" ]]; then
  export HPL_TRAIN_EXIT_CODE="$status"
  # shellcheck source=/dev/null
  source "$HPL_SCRIPTS_DIR/post_script.sh" || echo "post_script failed (exit $?)" >&2
fi
exit "$status"
