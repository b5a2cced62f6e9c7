"""A recipe whose entry script ships with the launcher (the open fine-tuning entry) runs in
pods that have no copy of this host's filesystem: the script rides in the scripts ConfigMap."""

from __future__ import annotations

from pathlib import Path

import k8s_schemas
import yaml

from hyperpod_launcher.launch.compose import plan
from hyperpod_launcher.util import resources
from tests.conftest import require_tool

DEEPSPEED = "recipes=fine-tuning/deepspeed/hf_llama3_8b_seq8k_gpu_zero2"
FSX_CLAIM = "cluster.persistent_volume_claims=[{claimName:fsx,mountPath:/fsx}]"
EXP = "recipes.exp_manager.exp_dir=/fsx/exp"


def test_deepspeed_entry_script_is_shipped_and_run_from_the_scripts_folder(tmp_path: Path) -> None:
    the_plan = plan(
        (DEEPSPEED, "cluster=k8s", "container=example.com/deepspeed:1",
         f"base_results_dir={tmp_path}", "++recipes.model.hf_model_name_or_path=/fsx/models/m",
         "recipes.model.data.train_dir=/fsx/data/train", FSX_CLAIM, EXP),
    )  # fmt: skip
    values = yaml.safe_load(the_plan.files["k8s_template/values.yaml"][0])
    shipped = Path(resources.example_path("open_ft.py")).read_text()
    assert values["scripts"]["open_ft.py"] == shipped
    train = values["scripts"]["train_script.sh"]
    assert " /hpl/scripts/open_ft.py --config-path=/hpl/job " in train
    assert str(resources.example_path("open_ft.py")) not in train
    assert "ds_config.json" in values["jobFiles"]


def test_open_sft_lora_chart_templates_with_the_entry_in_its_configmap(tmp_path: Path) -> None:
    the_plan = plan(
        ("recipes=fine-tuning/hf/open_causal_lm_gpu_sft_lora", "cluster=k8s",
         "container=example.com/train:1", f"base_results_dir={tmp_path}",
         "recipes.model.hf_model_name_or_path=Qwen/Qwen3-8B",
         "recipes.model.data.train_dir=/fsx/data/sft", FSX_CLAIM, EXP),
    )  # fmt: skip
    objects, errors, _ = k8s_schemas.write_and_template(the_plan, require_tool("helm"))
    assert errors == []  # the PyTorchJob passes the CRD schema, the rest Kubernetes' own
    (job,) = [o for o in objects if o["kind"] == "PyTorchJob"]
    configmaps = [o for o in objects if o["kind"] == "ConfigMap"]
    shipped = Path(resources.example_path("open_ft.py")).read_text()
    assert any(cm.get("data", {}).get("open_ft.py") == shipped for cm in configmaps)
    assert job["spec"]["pytorchReplicaSpecs"]
