"""A recipe whose entry script ships with the launcher (DeepSpeed) runs in pods that have no
copy of this host's filesystem: the script rides in the scripts ConfigMap."""

from __future__ import annotations

from pathlib import Path

import yaml

from hyperpod_launcher import resources
from hyperpod_launcher.compose import plan

DEEPSPEED = "recipes=fine-tuning/deepspeed/hf_llama3_8b_seq8k_gpu_zero2"


def test_deepspeed_entry_script_is_shipped_and_run_from_the_scripts_folder(tmp_path: Path) -> None:
    the_plan = plan(
        (DEEPSPEED, "cluster=k8s", "container=example.com/deepspeed:1",
         f"base_results_dir={tmp_path}", "++recipes.model.hf_model_name_or_path=/fsx/models/m",
         "recipes.model.data.train_dir=/fsx/data/train"),
    )  # fmt: skip
    values = yaml.safe_load(the_plan.files["k8s_template/values.yaml"][0])
    shipped = Path(resources.example_path("open_ft.py")).read_text()
    assert values["scripts"]["open_ft.py"] == shipped
    train = values["scripts"]["train_script.sh"]
    assert " /hpl/scripts/open_ft.py --config-path=/hpl/job " in train
    assert str(resources.example_path("open_ft.py")) not in train
    assert "ds_config.json" in values["jobFiles"]
