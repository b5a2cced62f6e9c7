"""Without `instance_type`, a recipe runs on the instance it is sized for (run.instance_type)
for everything an explicit one drives; `instance_type=none` opts out to plain nodes."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.conftest import REPO, run_launcher

L8B = "recipes=training/llama/hf_llama3_8b_seq8k_gpu_p5x16_pretrain"
L8B_DIR = "llama3-8b-seq8k-p5x16-pretrain"
TRN = "recipes=training/llama/hf_llama3_8b_seq8k_trn1x4_pretrain"
NO_SDK = str(REPO / "tests" / "fixtures" / "no_sagemaker")


def launch(tmp_path: Path, *overrides: str, env: dict[str, str] | None = None):
    return run_launcher(
        *overrides,
        f"base_results_dir={tmp_path / 'results'}",
        "dry_run=true",
        env={
            "HPL_STATE_DIR": str(tmp_path / "state"),
            "XDG_CACHE_HOME": str(tmp_path / "cache"),
            **(env or {}),
        },
    )


def ok(proc) -> str:
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()[0]


def one_error(proc) -> str:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    return line


def test_slurm_uses_the_recipes_instance_for_environment_and_says_so(tmp_path: Path) -> None:
    line = ok(launch(tmp_path, L8B))
    assert "16 node(s) x 8 process(es)" in line
    assert "instance_type=p5.48xlarge: recipes.run.instance_type" in line
    script = (tmp_path / "results" / L8B_DIR / "train_script.sh").read_text()
    for exported in ("FI_PROVIDER", "FI_EFA_USE_DEVICE_RDMA", "NCCL_SOCKET_IFNAME"):
        assert f"export {exported}=" in script, exported


def test_an_explicit_instance_type_says_command_line(tmp_path: Path) -> None:
    line = ok(launch(tmp_path, L8B, "instance_type=ml.p5.48xlarge"))
    assert "instance_type=ml.p5.48xlarge: command line" in line


def test_device_checks_apply_without_instance_type(tmp_path: Path) -> None:
    assert one_error(launch(tmp_path, L8B, "recipes.trainer.devices=16")) == (
        "error: recipes.trainer.devices=16 does not match instance_type=p5.48xlarge, which has "
        "8 devices per node"
    )
    assert "which has 32 NeuronCores per node" in one_error(
        launch(tmp_path, TRN, "recipes.trainer.devices=16")
    )
    assert not (tmp_path / "results").exists()


def test_trainium_recipe_gets_its_neuron_cores_and_environment(tmp_path: Path) -> None:
    line = ok(launch(tmp_path, TRN))
    assert "4 node(s) x 32 process(es)" in line
    assert "instance_type=trn1.32xlarge: recipes.run.instance_type" in line


def values(tmp_path: Path) -> dict:
    path = tmp_path / "results" / L8B_DIR / "k8s_template" / "values.yaml"
    return yaml.safe_load(path.read_text())


def test_kubernetes_requests_the_recipes_gpus_and_efa_and_pins_its_nodes(tmp_path: Path) -> None:
    ok(launch(tmp_path, L8B, "cluster=k8s", "container=img:1"))
    data = values(tmp_path)
    assert data["resources"]["requests"] == {"nvidia.com/gpu": "8", "vpc.amazonaws.com/efa": "32"}
    assert data["resources"]["limits"] == data["resources"]["requests"]
    assert {
        "key": "node.kubernetes.io/instance-type",
        "values": ["p5.48xlarge", "ml.p5.48xlarge"],
    } in data["nodeAffinity"]["required"]


def test_opt_out_runs_on_plain_nodes_and_still_asks_for_the_recipes_gpus(tmp_path: Path) -> None:
    line = ok(
        launch(
            tmp_path,
            L8B,
            "cluster=k8s",
            "container=img:1",
            "instance_type=none",
            "recipes.trainer.devices=4",
            "recipes.model.shard_degree=32",
        )
    )
    assert "16 pod(s) x 4 process(es)" in line and "instance_type=none: plain nodes" in line
    data = values(tmp_path)
    assert data["resources"]["requests"] == {"nvidia.com/gpu": "4"}
    assert data["nodeAffinity"]["required"] == []


def test_opt_out_on_slurm_skips_the_device_checks(tmp_path: Path) -> None:
    line = ok(
        launch(
            tmp_path,
            L8B,
            "instance_type=none",
            "recipes.trainer.devices=2",
            "recipes.model.shard_degree=16",
        )
    )
    assert "16 node(s) x 2 process(es)" in line
    script = (tmp_path / "results" / L8B_DIR / "train_script.sh").read_text()
    assert "export FI_PROVIDER" not in script  # no EFA on plain nodes


def test_sagemaker_uses_the_recipes_instance_type(tmp_path: Path) -> None:
    proc = launch(
        tmp_path,
        L8B,
        "cluster=sm_jobs",
        "cluster.sm_jobs_config.output_path=s3://bucket/out",
        "cluster.sm_jobs_config.region=us-west-2",
        env={"PYTHONPATH": NO_SDK},  # the dry run prints the estimator arguments without it
    )
    assert proc.returncode == 0, proc.stderr
    assert '"instance_type": "ml.p5.48xlarge"' in proc.stdout
    assert "instance_type=p5.48xlarge: recipes.run.instance_type" in proc.stdout


def test_custom_scripts_without_instance_type_keep_plain_nodes(tmp_path: Path) -> None:
    line = ok(launch(tmp_path, "cluster=slurm"))
    assert "1 node(s) x 2 process(es) (cluster=slurm: command line)" in line
    script = (tmp_path / "results" / "allreduce-smoke" / "train_script.sh").read_text()
    assert "NCCL_SOCKET_IFNAME" not in script
