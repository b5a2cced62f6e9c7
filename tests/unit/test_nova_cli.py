"""Amazon Nova recipes through the command line: they run only on cluster=k8s, and a value their
model and method do not allow is one line naming the key, the value and the allowed ones; exit
2 and nothing written, as for any bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.conftest import run_launcher

LITE_SFT = "recipes=fine-tuning/nova/nova_lite_p5_gpu_sft"
K8S = ("cluster=k8s", "container=example.com/nova:1", "dry_run=true")
NOT_K8S = "is an Amazon Nova recipe, which runs only on cluster=k8s (SageMaker HyperPod EKS)"

CASES = {
    "slurm (the default cluster)": ((LITE_SFT, "dry_run=true"), ["cluster=slurm: ", NOT_K8S]),
    "local": ((LITE_SFT, "cluster=local"), ["cluster=local: ", NOT_K8S]),
    "sm_jobs": (
        ("recipes=fine-tuning/nova/nova_pro_p5_gpu_ppo", "cluster=sm_jobs", "dry_run=true"),
        ["cluster=sm_jobs: recipes=fine-tuning/nova/nova_pro_p5_gpu_ppo", NOT_K8S],
    ),
    "replicas": (
        (LITE_SFT, *K8S, "recipes.run.replicas=3"),
        ["recipes.run.replicas=3: Nova lite sft allows 4, 8, 16"],
    ),
    "global batch size": (
        (
            "recipes=fine-tuning/nova/nova_pro_p5_gpu_sft",
            *K8S,
            "recipes.training_config.global_batch_size=64",
        ),
        ["recipes.training_config.global_batch_size=64: Nova pro sft allows 16, 32"],
    ),
    "pretraining replicas": (
        ("recipes=training/nova/nova_micro_p5x8_gpu_pretrain", *K8S, "recipes.run.replicas=64"),
        ["recipes.run.replicas=64: Nova micro pretrain allows 2, 4, 8, 16, 32"],
    ),
    "evaluation replicas": (
        ("recipes=evaluation/nova/nova_pro_p5_48xl_llm_judge_eval", *K8S, "recipes.run.replicas=2"),
        ["recipes.run.replicas=2: Nova pro evaluation allows 1"],
    ),
    "LoRA alpha": (
        (
            "recipes=fine-tuning/nova/nova_micro_p5_gpu_lora_dpo",
            *K8S,
            "recipes.training_config.model.peft.lora_tuning.alpha=100",
        ),
        ["recipes.training_config.model.peft.lora_tuning.alpha", "32, 64, 96, 128, 160, 192"],
    ),
    "DPO beta": (
        (
            "recipes=fine-tuning/nova/nova_lite_p5_gpu_dpo",
            *K8S,
            "recipes.training_config.model.dpo_cfg.beta=0.9",
        ),
        ["recipes.training_config.model.dpo_cfg.beta", ">= 0.001 and <= 0.5, got 0.9"],
    ),
    "PPO service replicas": (
        ("recipes=fine-tuning/nova/nova_lite_p5_gpu_ppo", *K8S, "recipes.run.rm_replicas=0"),
        ["recipes.run.rm_replicas", ">= 1", "got 0"],
    ),
    "unknown key": (
        (LITE_SFT, *K8S, "recipes.training_config.max_lenght=1024"),
        ["recipes.training_config.max_lenght", "did you mean"],
    ),
    "no container": ((LITE_SFT, "cluster=k8s", "dry_run=true"), ["container is not set"]),
    "another instance type": (
        (LITE_SFT, *K8S, "instance_type=g5.48xlarge"),
        ["instance_type=g5.48xlarge: Nova jobs run only on ml.p5.48xlarge nodes"],
    ),
    "volumes": (
        (LITE_SFT, *K8S, "cluster.volumes=[{volumeName: d, hostPath: /data}]"),
        ["cluster.volumes: not for Nova recipes"],
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_nova_input_is_one_line_exit_2_nothing_written(case: str, tmp_path: Path) -> None:
    overrides, expected = CASES[case]
    proc = run_launcher(f"base_results_dir={tmp_path / 'results'}", *overrides, cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ")
    for fragment in expected:
        assert fragment in lines[0], lines[0]
    assert list(tmp_path.iterdir()) == [], "nothing may be written"


def test_hyperpods_nova_launch_line_with_cluster_k8s_renders(tmp_path: Path) -> None:
    """HyperPod's launch script line, plus what our launcher needs: cluster=k8s and an image."""
    proc = run_launcher(
        "recipes=fine-tuning/nova/nova_lite_p5_gpu_ppo",
        f"base_results_dir={tmp_path}/results",
        *K8S,
        env={"HYDRA_FULL_ERROR": "1"},
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert "k8s Nova ppo" in proc.stdout
    manifests = (tmp_path / "results" / "my-ppo-run" / "manifests.yaml").read_text()
    objects = [o for o in yaml.safe_load_all(manifests) if o]
    kinds = sorted((o["kind"], o["metadata"]["name"].rsplit("-", 1)[1]) for o in objects)
    assert kinds == sorted(
        [("ConfigMap", s) for s in ("rm", "cm", "am", "ag", "at")]
        + [("PyTorchJob", s) for s in ("rm", "cm", "am", "at")]
        + [("Service", "ag"), ("StatefulSet", "ag")]
    )
