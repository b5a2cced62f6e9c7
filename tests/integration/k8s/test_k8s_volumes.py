"""On Kubernetes every path a recipe names must be on a volume of the pods: the pods share no
other storage with each other or with the submit host. Outputs and caches default to a folder
of the first claim, which every replica mounts; a path on no volume is one line, exit 2."""

from __future__ import annotations

from pathlib import Path

import k8s_schemas
import yaml

from hyperpod_launcher.launch.compose import plan
from tests.conftest import require_tool, run_launcher

L8B = "recipes=training/llama/hf_llama3_8b_seq8k_gpu_p5x16_pretrain"
TRN = "recipes=training/llama/hf_llama3_8b_seq8k_trn1x4_pretrain"
OPEN = "recipes=fine-tuning/hf/open_causal_lm_gpu_sft_lora"
CLAIM = "cluster.persistent_volume_claims=[{claimName:fsx,mountPath:/fsx}]"


def launch(tmp_path: Path, *overrides: str) -> tuple[int, list[str]]:
    proc = run_launcher(
        "cluster=k8s", "container=example.com/train:1", f"base_results_dir={tmp_path / 'r'}",
        "dry_run=true", *overrides, cwd=tmp_path,
    )  # fmt: skip
    return proc.returncode, proc.stderr.splitlines()


def test_data_on_no_volume_is_one_line(tmp_path: Path) -> None:
    code, lines = launch(
        tmp_path, L8B, "recipes.model.data.train_dir=/fsx/data", "instance_type=p5.48xlarge"
    )
    assert code == 2
    assert lines == [
        "error: recipes.model.data.train_dir=/fsx/data: on no volume of the pods, so no pod can "
        "read it; mount its folder with "
        "cluster.persistent_volume_claims=[{claimName:<claim>,mountPath:<folder>}] "
        "(or cluster.volumes)"
    ]
    assert not (tmp_path / "r").exists()


def test_outputs_on_no_volume_need_the_throwaway_opt_in(tmp_path: Path) -> None:
    base = (L8B, "instance_type=p5.48xlarge", "recipes.model.data.use_synthetic_data=true")
    code, lines = launch(tmp_path, *base, "recipes.exp_manager.exp_dir=/scratch/exp")
    assert code == 2 and len(lines) == 1, lines
    assert lines[0].startswith("error: recipes.exp_manager.exp_dir=/scratch/exp: on no volume")
    assert "cluster.throwaway_outputs=true" in lines[0]
    code, lines = launch(
        tmp_path,
        *base,
        "recipes.exp_manager.exp_dir=/scratch/exp",
        "cluster.throwaway_outputs=true",
    )
    assert code == 0, lines


def test_open_recipe_outputs_under_the_pod_job_folder_are_refused(tmp_path: Path) -> None:
    code, lines = launch(
        tmp_path, OPEN, "recipes.model.hf_model_name_or_path=Qwen/Qwen3-8B",
        "recipes.model.data.train_dir=/fsx/sft", CLAIM,
    )  # fmt: skip
    assert code == 2 and len(lines) == 1, lines
    assert lines[0].startswith("error: recipes.exp_manager.exp_dir=null: the open recipe then")


def test_outputs_and_caches_default_to_the_claim_every_replica_mounts(tmp_path: Path) -> None:
    the_plan = plan(
        (TRN, "cluster=k8s", "container=example.com/neuron:1", f"base_results_dir={tmp_path}",
         "recipes.data.train_dir=/fsx/data", "recipes.model.model_config=/fsx/llama/config.json",
         CLAIM),
    )  # fmt: skip
    recipe = yaml.safe_load(the_plan.spec.recipe_yaml)
    run = recipe["run"]["name"]
    assert recipe["exp_manager"]["exp_dir"] == f"/fsx/{run}/exp"
    assert recipe["compiler_cache_url"] == f"/fsx/{run}/cache/neuron"
    assert ("HF_HOME", f"/fsx/{run}/cache/huggingface") in the_plan.spec.env
    objects, errors, _ = k8s_schemas.write_and_template(the_plan, require_tool("helm"))
    assert errors == []
    (job,) = [o for o in objects if o["kind"] == "PyTorchJob"]
    replicas = job["spec"]["pytorchReplicaSpecs"]
    assert set(replicas) == {"Master", "Worker"}  # 4 nodes
    for replica in replicas.values():
        pod = replica["template"]["spec"]
        claims = [v for v in pod["volumes"] if "persistentVolumeClaim" in v]
        assert [c["persistentVolumeClaim"]["claimName"] for c in claims] == ["fsx"]
        (container,) = [c for c in pod["containers"] if c["name"] != "checkout"]
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        assert mounts[claims[0]["name"]] == "/fsx"
