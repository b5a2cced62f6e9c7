"""An open fine-tuning recipe on SageMaker: the request reaches the stand-in (moto) with the
launcher's entry script, the resolved recipe, its DeepSpeed config and the stack's
requirements.txt in the uploaded source, on a PyTorch image new enough for Transformers 5."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from conftest import archive, hyperparameters, sm, submit

from hyperpod_launcher.stacks import train_stack
from hyperpod_launcher.util import resources


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
    # The image brings torch >= 2.6 and installs requirements.txt (the [train] stack) first.
    image = create["AlgorithmSpecification"]["TrainingImage"]
    assert "pytorch-training:2.8.0-gpu-py312" in image, image
    required = files["requirements.txt"].decode().splitlines()
    assert [line for line in required if not line.startswith("#")] == list(train_stack.REQUIREMENTS)


def test_stack_requirements_are_the_train_extra_less_torch() -> None:
    import tomllib

    pyproject = tomllib.loads((Path(__file__).parents[3] / "pyproject.toml").read_text())
    train = pyproject["project"]["optional-dependencies"]["train"]
    assert [r for r in train if not r.startswith("torch")] == list(train_stack.REQUIREMENTS)
