"""What a SageMaker job has where a recipe leaves a required value unset: its checkpoint folder
(synced to checkpoint_s3_uri) as the experiment folder, and the `train` channel as the data."""

from __future__ import annotations

from hyperpod_launcher.spec.required import BackendDefaults, Get

TRAIN_CHANNEL = "/opt/ml/input/data/train"  # where SageMaker puts the `train` input
CHECKPOINTS = "/opt/ml/checkpoints"  # the SDK's default checkpoint_local_path
_INPUTS = "cluster.sm_jobs_config.inputs"


def _train_channel(get: Get) -> str | None:
    if get(f"{_INPUTS}.s3.train") or get(f"{_INPUTS}.file_system.id"):
        return TRAIN_CHANNEL
    return None


REQUIRED_DEFAULTS = BackendDefaults(
    exp_dir=lambda get: CHECKPOINTS,
    # Synced to checkpoint_s3_uri and restored on a retry, so a retry reuses compiled graphs.
    cache_dir=lambda get: f"{CHECKPOINTS}/cache",
    data_dir=_train_channel,
    data_dir_needs=f"set {_INPUTS}.s3.train (the job reads it at {TRAIN_CHANNEL})",
)
