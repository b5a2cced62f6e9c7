#!/bin/bash
# Runs job allreduce-smoke (launch golden) on this machine,
# written by hyperpod-launcher 0.1.0. One node; torchrun picks a free port.
set -uo pipefail
# Started in its own session: this process group is the job. `status` and `cancel` find it
# here even when the launcher that started it is gone.
echo "$$" > /results/allreduce-smoke/local-golden.pid

export HPL_NNODES=1
export HPL_RDZV_HOST=127.0.0.1
export HPL_RDZV_PORT=0
export HPL_RDZV_ID=hpl-golden
export HPL_RESTART_COUNT=0

bash /results/allreduce-smoke/launches/golden/train_script.sh
status=$?
# `hyperpod-launch status` reads the exit status from here (a detached job has no parent).
echo "$status" > /results/allreduce-smoke/local-golden.exit
exit "$status"
