"""Container mounts from the resolved recipe: which paths, read-only or not, folded."""

from __future__ import annotations

from pathlib import Path

from hyperpod_launcher.launch.compose import plan
from hyperpod_launcher.spec.mounts import Mount, fold, recipe_mounts
from tests.conftest import REPO

ADAPTER = (
    "recipes=training/llama/hf_llama3_8b_seq8k_gpu_p5x16_pretrain",
    "instance_type=p5.48xlarge",
    "cluster=slurm",
)


def test_fold_drops_what_a_parent_provides_and_keeps_writable_children() -> None:
    folded = fold(
        [
            Mount("/fsx/data/train", "/fsx/data/train", "ro"),
            Mount("/fsx/data", "/fsx/data", "ro"),
            Mount("/fsx/data/", "/fsx/data", "ro"),  # the same, spelled with a slash
            Mount("/fsx/data/out", "/fsx/data/out"),  # written inside a read-only folder
            Mount("/fsx/data/out/ckpt", "/fsx/data/out/ckpt", "ro"),
            Mount("/fsx/exp", "/fsx/exp"),
            Mount("/fsx/exp/resume", "/fsx/exp/resume", "ro"),
            Mount("/models", "/models", "ro"),
            Mount("/models", "/models"),  # read and written: one writable mount
            Mount("/elsewhere/data", "/fsx/data/other", "ro"),  # another source: kept
        ]
    )
    assert [str(m) for m in folded] == [  # parents first
        "/models:/models",
        "/fsx/data:/fsx/data:ro",
        "/fsx/exp:/fsx/exp",
        "/fsx/data/out:/fsx/data/out",
        "/elsewhere/data:/fsx/data/other:ro",
    ]


def test_recipe_paths_that_exist_here_are_mounted_read_only(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "model").mkdir()
    (tmp_path / "megatron").mkdir()
    (tmp_path / "megatron" / "text_document.bin").write_text("x")
    (tmp_path / "config.json").write_text("{}")
    recipe = {
        "run": {"entry_script": "/opt/NeMo/train.py", "results_dir": str(tmp_path / "r")},
        "exp_manager": {"exp_dir": str(tmp_path / "exp"), "checkpoint_dir": "None/checkpoints"},
        "model": {
            "data": {"train_dir": str(tmp_path / "data"), "val_dir": "/not/here"},
            "hf_model_name_or_path": str(tmp_path / "model"),
            "model_config": str(tmp_path / "config.json"),
            "data_prefix": [1.0, str(tmp_path / "megatron" / "text_document")],
            "tokenizer_name": "meta-llama/Llama-3-8B",
            "uri": "s3://bucket/data",
        },
    }
    assert sorted(str(m) for m in recipe_mounts(recipe)) == sorted(
        [
            f"{tmp_path}/exp:{tmp_path}/exp",
            f"{tmp_path}/data:{tmp_path}/data:ro",
            f"{tmp_path}/model:{tmp_path}/model:ro",
            f"{tmp_path}/config.json:{tmp_path}/config.json:ro",
            f"{tmp_path}/megatron:{tmp_path}/megatron:ro",
        ]
    )


def test_pyxis_and_docker_mount_the_recipes_paths(tmp_path: Path) -> None:
    data = tmp_path / "fsx" / "data"
    data.mkdir(parents=True)
    exp = tmp_path / "fsx" / "exp"
    overrides = (
        *ADAPTER,
        f"base_results_dir={tmp_path / 'results'}",
        f"recipes.model.data.train_dir={data}",
        f"recipes.model.data.val_dir={data}/val",
        f"recipes.exp_manager.exp_dir={exp}",
        f"container_mounts=[{tmp_path}/extra:/extra:ro]",
    )
    job_dir = tmp_path / "results" / "llama3-8b-seq8k-p5x16-pretrain"
    expected = [  # parents first, then the launcher's before the recipe's
        f"{tmp_path}/extra:/extra:ro",
        f"{job_dir}:{job_dir}",
        f"{exp}:{exp}",
        f"{data}:{data}:ro",
    ]
    pyxis = plan([*overrides, "container='nvcr.io#nvidia/pytorch:24.01-py3'"])
    (batch,) = [f.text for n, f in pyxis.request.files.items() if n.endswith("_submission.sh")]
    assert f"--container-mounts={','.join(expected)}" in batch
    assert f"mkdir -p {job_dir} {exp}\n" in batch  # what the job writes exists before it starts
    docker = plan([*overrides, "container=pytorch:24.01"])
    node = docker.request.files["docker_node.sh"].text
    for mount in expected:
        assert f"--volume={mount}" in node


def test_the_launchers_own_entry_script_travels_in_the_job_folder(tmp_path: Path) -> None:
    the_plan = plan(["cluster=slurm", f"base_results_dir={tmp_path}", "container=pytorch:24.01"])
    shipped = the_plan.request.files["scripts/allreduce_smoke.py"].text
    assert shipped == (REPO / "hyperpod_launcher" / "examples" / "allreduce_smoke.py").read_text()
    train = the_plan.request.files["train_script.sh"].text
    assert f"{the_plan.spec.launch_dir}/scripts/allreduce_smoke.py" in train
    node = the_plan.request.files["docker_node.sh"].text
    assert "examples" not in node  # nothing of the launcher's install is mounted


def test_a_local_entry_script_is_mounted_with_its_folder(tmp_path: Path) -> None:
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "train.py").write_text("")
    the_plan = plan(
        [
            "cluster=slurm",
            f"base_results_dir={tmp_path / 'results'}",
            "container=pytorch:24.01",
            f"training_cfg.entry_script={tmp_path / 'code' / 'train.py'}",
        ]
    )
    node = the_plan.request.files["docker_node.sh"].text
    assert f"--volume={tmp_path}/code:{tmp_path}/code:ro" in node
    assert not any(name.startswith("scripts/") for name in the_plan.request.files)
