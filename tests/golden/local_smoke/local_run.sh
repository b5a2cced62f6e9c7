#!/bin/bash
# Runs job allreduce-smoke (launch golden) on this machine,
# written by hyperpod-launcher 0.1.0. One node; torchrun picks a free port.
set -euo pipefail

export HPL_NNODES=1
export HPL_RDZV_HOST=127.0.0.1
export HPL_RDZV_PORT=0
export HPL_RDZV_ID=hpl-golden

exec bash /results/allreduce-smoke/train_script.sh
