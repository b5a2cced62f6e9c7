"""Whatever a recipe writes to /opt/ml/checkpoints reaches S3: every recipe launch gets a
CheckpointConfig (under the job's output path unless given), the adapter's final model goes to
/opt/ml/model (SageMaker's model.tar.gz), and paths of the submit host are refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from conftest import BUCKET, archive, hyperparameters, sm, submit

from tests.conftest import run_launcher

LLAMA = "recipes=training/llama/hf_llama3_8b_seq8k_gpu_p5x16_pretrain"
ZERO2 = "recipes=fine-tuning/deepspeed/hf_llama3_8b_seq8k_gpu_zero2"


def test_adapter_checkpoints_and_final_model_reach_s3(moto: Any, tmp_path: Path) -> None:
    create, _ = submit(
        moto,
        LLAMA,
        *sm(
            "instance_type=ml.p5.48xlarge",
            "recipes.trainer.num_nodes=2",
            "recipes.model.shard_degree=8",
            "recipes.model.data.use_synthetic_data=true",
            f"git.repo_url_or_path={moto.adapter.path}",
            f"git.commit={moto.adapter.first}",
            tmp_path=tmp_path,
        ),
    )
    name = create["TrainingJobName"]
    assert create["CheckpointConfig"]["S3Uri"] == f"s3://{BUCKET}/jobs/{name}/checkpoints"
    assert create["CheckpointConfig"].get("LocalPath", "/opt/ml/checkpoints") == (
        "/opt/ml/checkpoints"
    )
    shipped = yaml.safe_load(archive(moto, create)[hyperparameters(create)["config-name"]])
    assert shipped["exp_manager"]["exp_dir"] == "/opt/ml/checkpoints"
    assert shipped["exp_manager"]["checkpoint_dir"] == "/opt/ml/checkpoints"
    assert shipped["exp_manager"]["export_full_model"]["final_export_dir"] == "/opt/ml/model"


def test_open_deepspeed_recipe_gets_a_checkpoint_config(moto: Any, tmp_path: Path) -> None:
    create, _ = submit(
        moto,
        ZERO2,
        *sm(
            "instance_type=ml.p5.48xlarge",
            "recipes.model.data.train_channel=train",
            "recipes.model.data.train_dir=s3://hyperpod-data/sft",
            tmp_path=tmp_path,
        ),
    )
    name = create["TrainingJobName"]
    assert create["CheckpointConfig"]["S3Uri"] == f"s3://{BUCKET}/jobs/{name}/checkpoints"
    shipped = yaml.safe_load(archive(moto, create)["recipe.yaml"])
    assert shipped["exp_manager"]["checkpoint_dir"] == "/opt/ml/checkpoints"


def test_a_host_data_path_is_one_line_and_nothing_is_written(tmp_path: Path) -> None:
    proc = run_launcher(
        LLAMA,
        *sm(
            "instance_type=ml.p5.48xlarge",
            "recipes.model.data.train_dir=/fsx/data",
            tmp_path=tmp_path,
        ),
        "dry_run=true",
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.splitlines() == [
        "error: recipes.model.data.train_dir=/fsx/data: no SageMaker instance sees this path; "
        "give an s3:// URI, or a channel's folder: cluster.sm_jobs_config.inputs.s3.<channel> or "
        "cluster.sm_jobs_config.inputs.file_system (FSx) is read at /opt/ml/input/data/<channel>"
    ]
    assert list(tmp_path.iterdir()) == []
