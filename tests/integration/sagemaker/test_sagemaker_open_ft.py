"""An open fine-tuning recipe on SageMaker: the request reaches the stand-in (moto) with the
launcher's entry script, the resolved recipe and its DeepSpeed config in the uploaded source."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from conftest import archive, hyperparameters, sm, submit

from hyperpod_launcher import resources


def test_open_recipe_ships_its_entry_in_the_uploaded_source(moto: Any, tmp_path: Path) -> None:
    create, _ = submit(
        moto,
        "recipes=fine-tuning/deepspeed/hf_llama3_8b_seq8k_gpu_zero2",
        *sm(
            "instance_type=ml.p5.48xlarge",
            "recipes.model.data.train_channel=train",
            "recipes.model.data.train_dir=s3://hyperpod-data/sft",
            tmp_path=tmp_path,
        ),
    )
    hyper = hyperparameters(create)
    assert hyper["sagemaker_program"] == "open_ft.py"
    assert hyper["config-path"] == "/opt/ml/code" and hyper["config-name"] == "recipe.yaml"
    files = archive(moto, create)
    assert files["open_ft.py"] == Path(resources.example_path("open_ft.py")).read_bytes()
    recipe = yaml.safe_load(files["recipe.yaml"])
    assert recipe["run"]["model_type"] == "open_ft" and recipe["model"]["strategy"] == "deepspeed"
    assert json.loads(files["ds_config.json"])["zero_optimization"]["stage"] == 2
