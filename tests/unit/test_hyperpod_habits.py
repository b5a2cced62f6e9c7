"""SageMaker HyperPod launch-script habits work as its users expect, through the command line:
HYDRA_FULL_ERROR=1 (every HyperPod script sets it) keeps a user error one line with exit 2;
`key=` from an unset script variable means null; the custom-script flow with
`--config-path=<launcher>/launcher_scripts/custom_script --config-name=config_slurm|config_k8s`;
mapping keys set as `cluster.custom_labels={team: a}`; HyperPod's own key names get one line
naming ours; our launch scripts honour SAGEMAKER_TRAINING_LAUNCHER_DIR."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, run_launcher

CUSTOM = REPO / "launcher_scripts" / "custom_script"
LORA = "recipes=fine-tuning/llama/hf_llama3_8b_seq8k_gpu_lora"
IMAGE = "registry.example.com/team/pytorch:24.01"
FULL_ERROR = {"HYDRA_FULL_ERROR": "1"}


def one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("recipes.model.nonsense=1", "unknown key 'recipes.model.nonsense'"),
        ("instance_typ=x", "unknown key 'instance_typ'"),
        ("recipes.model.train_batch_size=0", "recipes.model.train_batch_size"),
    ],
)
def test_full_error_env_keeps_a_user_error_one_line(
    override: str, message: str, tmp_path: Path
) -> None:
    proc = run_launcher(
        LORA, f"base_results_dir={tmp_path}", override, "dry_run=true", env=FULL_ERROR
    )
    assert message in one_line_error(proc)
    assert not (tmp_path / "llama3-8b-seq8k-lora").exists()


def test_an_unset_script_variable_leaves_an_optional_key_null(tmp_path: Path) -> None:
    proc = run_launcher(
        LORA,
        f"base_results_dir={tmp_path}",
        "recipes.run.name=unset",
        f"recipes.model.hf_model_name_or_path={tmp_path / 'model'}",
        "recipes.model.data.val_dir=",  # VAL_DIR unset: HyperPod's script passes ""
        "recipes.model.hf_access_token=",
        "dry_run=true",
        env=FULL_ERROR,
    )
    assert proc.returncode == 0, proc.stderr
    written = yaml.safe_load((tmp_path / "unset" / "unset_hydra.yaml").read_text())
    assert written["model"]["data"]["val_dir"] is None
    assert written["model"]["hf_access_token"] is None


def test_an_unset_script_variable_for_a_required_key_is_one_line(tmp_path: Path) -> None:
    proc = run_launcher(
        LORA,
        f"base_results_dir={tmp_path}",
        "recipes.model.hf_model_name_or_path=",
        "dry_run=true",
        env=FULL_ERROR,
    )
    assert "recipes.model.hf_model_name_or_path=null" in one_line_error(proc)
    assert not any(tmp_path.iterdir())


def test_a_mapping_key_takes_hyperpods_form(tmp_path: Path) -> None:
    proc = run_launcher(
        LORA,
        "cluster=k8s",
        f"container={IMAGE}",
        f"base_results_dir={tmp_path}",
        "recipes.run.name=labels",
        f"recipes.model.hf_model_name_or_path={tmp_path / 'model'}",
        f"+cluster.persistent_volume_claims=[{{claimName:fsx,mountPath:{tmp_path}}}]",
        "cluster.custom_labels={team: a}",
        "cluster.label_selector={required: {node.kubernetes.io/instance-type: [ml.p5.48xlarge]}}",
        "dry_run=true",
    )
    assert proc.returncode == 0, proc.stderr
    values = yaml.safe_load((tmp_path / "labels" / "k8s_template" / "values.yaml").read_text())
    text = yaml.safe_dump(values)
    assert "team: a" in text
    assert "ml.p5.48xlarge" in text


def custom_script_line(config: str, tmp_path: Path, *extra: str) -> list[str]:
    """HyperPod's custom-script launch line (run_allreduce.sh), against our configs."""
    script = tmp_path / "custom_allreduce.py"
    script.write_text("print('user script')\n")
    return [
        f"--config-path={CUSTOM}",
        f"--config-name={config}",
        f"base_results_dir={tmp_path / 'results'}",
        f"training_cfg.entry_script={script}",
        f"container={IMAGE}",
        *extra,
        "dry_run=true",
    ]


def test_hyperpods_custom_script_line_renders_on_slurm(tmp_path: Path) -> None:
    proc = run_launcher(
        *custom_script_line("config_slurm", tmp_path, f"container_mounts=[{tmp_path}]"),
        env=FULL_ERROR,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("slurm job testcustom_slurm_test_custom: 2 node(s) x 8")
    job = tmp_path / "results" / "test_custom"
    submission = (job / "testcustom_slurm_test_custom_submission.sh").read_text()
    assert "#SBATCH --exclusive" in submission
    assert "custom_allreduce.py" in (job / "train_script.sh").read_text()


def test_hyperpods_custom_script_line_renders_on_kubernetes(tmp_path: Path) -> None:
    proc = run_launcher(
        *custom_script_line("config_k8s", tmp_path, "cluster.custom_labels={team: a}"),
        env=FULL_ERROR,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("k8s PyTorchJob test-custom-")
    assert "(cluster=k8s: default of the config;" in proc.stdout.splitlines()[0]


def test_hyperpods_null_mount_entry_mounts_nothing(tmp_path: Path) -> None:
    proc = run_launcher(*custom_script_line("config_slurm", tmp_path, "container_mounts=[null]"))
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize(
    ("override", "ours"),
    [
        ("cluster.instance_type=p5.48xlarge", "instance_type=<type>"),
        ("cluster.cluster_type=slurm", "cluster=<name>"),
        ("cluster.cluster_config.exclusive=true", "cluster.<key>"),
        ("slurm_docker_cfg.docker_args=[a]", "cluster.slurm_docker_cfg"),
    ],
)
def test_hyperpods_own_key_names_get_one_line_naming_ours(
    override: str, ours: str, tmp_path: Path
) -> None:
    proc = run_launcher(*custom_script_line("config_slurm", tmp_path, override), env=FULL_ERROR)
    line = one_line_error(proc)
    assert "is SageMaker HyperPod's name; here it is" in line and ours in line, line


def test_the_all_reduce_example_script_renders_through_the_custom_configs(tmp_path: Path) -> None:
    for cluster in ("slurm", "k8s"):
        proc = subprocess.run(
            ["bash", str(CUSTOM / "run_allreduce.sh"), "dry_run=true"],
            capture_output=True,
            text=True,
            env={
                **os.environ,
                "CLUSTER": cluster,
                "CONTAINER": IMAGE,
                "BASE_RESULTS_DIR": str(tmp_path / cluster),
                "PYTHONPATH": str(REPO),
            },
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "slurm" / "test_custom" / "train_script.sh").is_file()


def test_launch_scripts_honour_sagemaker_training_launcher_dir(tmp_path: Path) -> None:
    """HyperPod's scripts find the launcher through SAGEMAKER_TRAINING_LAUNCHER_DIR; ours too,
    so a copied script outside the checkout still runs the launcher it names."""
    script = tmp_path / "run_copy.sh"
    script.write_text(
        (REPO / "launcher_scripts" / "llama" / "run_hf_llama3_8b_seq8k_gpu_lora.sh").read_text()
    )
    proc = subprocess.run(
        ["bash", str(script), "dry_run=true"],
        capture_output=True,
        text=True,
        env={
            **os.environ,
            "SAGEMAKER_TRAINING_LAUNCHER_DIR": str(REPO),
            "BASE_RESULTS_DIR": str(tmp_path / "results"),
            "HF_MODEL_NAME_OR_PATH": str(tmp_path / "model"),
            "PYTHONPATH": str(REPO),
        },
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "results" / "llama3-8b-seq8k-lora").is_dir()
