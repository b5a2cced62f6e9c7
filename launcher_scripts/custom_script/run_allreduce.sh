#!/bin/bash
# The all-reduce example (custom_allreduce.py) through the custom-script configs, as SageMaker
# HyperPod's custom-script launch runs it.
#
# Usage: [CLUSTER=slurm|k8s] [CONTAINER=<image>] bash launcher_scripts/custom_script/run_allreduce.sh [key=value ...]
# Extra arguments are Hydra overrides (e.g. dry_run=true training_cfg.run.nodes=1).
set -euo pipefail

# The launcher checkout: HYPERPOD_LAUNCHER_DIR, else SAGEMAKER_TRAINING_LAUNCHER_DIR, else the
# checkout this script belongs to (two levels up).
HYPERPOD_LAUNCHER_DIR="${HYPERPOD_LAUNCHER_DIR:-${SAGEMAKER_TRAINING_LAUNCHER_DIR:-$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd)}}"
CONTAINER="${CONTAINER:-}"  # empty: bare metal on Slurm (Kubernetes needs an image)

args=(
  "--config-path=${HYPERPOD_LAUNCHER_DIR}/launcher_scripts/custom_script"
  "--config-name=config_${CLUSTER:-slurm}"
  "base_results_dir=${BASE_RESULTS_DIR:-${HYPERPOD_LAUNCHER_DIR}/results}"
  "training_cfg.entry_script=${HYPERPOD_LAUNCHER_DIR}/launcher_scripts/custom_script/custom_allreduce.py"
)
if [[ -n "$CONTAINER" ]]; then args+=("container=$CONTAINER"); fi
if [[ -n "$CONTAINER" && "${CLUSTER:-slurm}" == slurm ]]; then
  args+=("container_mounts=[${HYPERPOD_LAUNCHER_DIR}]")  # the example script, inside the container
fi

exec "${PYTHON:-python3}" "${HYPERPOD_LAUNCHER_DIR}/main.py" "${args[@]}" "$@"
