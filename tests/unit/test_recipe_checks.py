"""Launch-time recipe validation: each rule, fed a violating override, is one line on stderr
with the key, the value and the rule; exit 2; no job folder. Plus the DeepSpeed config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hyperpod_launcher.spec import recipe_checks
from hyperpod_launcher.stacks import deepspeed_config as ds_config
from hyperpod_launcher.util.errors import UserError
from tests.conftest import run_launcher

L8B = "recipes=training/llama/hf_llama3_8b_seq8k_gpu_p5x16_pretrain"
L70B_16K = "recipes=training/llama/hf_llama3_70b_seq16k_gpu_p5x32_pretrain"
LORA = "recipes=fine-tuning/llama/hf_llama3_8b_seq8k_gpu_lora"
MODEL = "recipes.model.hf_model_name_or_path=/fsx/models/llama3-8b"
TRN8B = "recipes=training/llama/hf_llama3_8b_seq8k_trn1x4_pretrain"
TRN70B = "recipes=training/llama/hf_llama3_70b_seq8k_trn1x16_pretrain"
DS = "recipes=fine-tuning/deepspeed/hf_llama3_8b_seq8k_gpu_zero2"
NEMO = "recipes=training/llama/megatron_llama3_1_8b_nemo"

# rule -> (overrides, fragments the one error line must contain)
RULES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "world not divisible by TP x EP x shard": (
        (L8B, "recipes.trainer.num_nodes=15"),
        ("recipes.model.shard_degree=64", "= 128 must divide the world size 120"),
    ),
    "context parallel must divide shard": (
        (L70B_16K, "recipes.model.context_parallel_degree=3"),
        ("recipes.model.context_parallel_degree=3", "must divide shard_degree 256"),
    ),
    "tensor parallel needs SMP": (
        (
            LORA,
            MODEL,
            "recipes.model.tensor_model_parallel_degree=2",
            "recipes.model.shard_degree=4",
        ),
        ("recipes.model.tensor_model_parallel_degree=2", "needs recipes.use_smp_model=true"),
    ),
    "degree must be positive": (
        (L8B, "recipes.model.tensor_model_parallel_degree=0"),
        ("recipes.model.tensor_model_parallel_degree: expected int >= 1, got 0",),
    ),
    "devices per node must match the instance": (
        (TRN8B, "instance_type=trn1.32xlarge", "recipes.trainer.devices=16"),
        ("recipes.trainer.devices=16", "trn1.32xlarge", "32 NeuronCores per node"),
    ),
    "fp8 off the p5 family": (
        (L8B, "instance_type=p4d.24xlarge"),
        ("recipes.model.fp8=true", "p5 family only", "p4d.24xlarge", "force_fp8=true"),
    ),
    "fp8 on Ada hardware the adapter does not support": (
        (L8B, "instance_type=g6e.48xlarge"),
        ("recipes.model.fp8=true", "g6e.48xlarge"),
    ),
    "Trainium recipe on a GPU instance": (
        (TRN8B, "instance_type=p5.48xlarge"),
        ("instance_type=p5.48xlarge", "Trainium recipe", "run.model_type=neuron-hf"),
    ),
    "GPU recipe on a Trainium instance": (
        (L8B, "instance_type=ml.trn1.32xlarge"),
        ("instance_type=trn1.32xlarge", "GPU recipe", "cannot run on Trainium"),
    ),
    "Trainium world not divisible by TP x PP": (
        (TRN70B, "recipes.trainer.num_nodes=3"),
        (
            "recipes.distributed_strategy.pipeline_model_parallel_size=8",
            "TP32 x PP8 = 256 must divide the world size 96 (3 nodes x 32 NeuronCores)",
        ),
    ),
    "Trainium global batch not divisible by micro batch x DP": (
        (TRN8B, "recipes.data.global_batch_size=1022"),
        ("recipes.data.global_batch_size=1022", "micro batch 1 x data parallel 4 = 4"),
    ),
    "NeMo global batch not divisible by micro batch x DP": (
        (NEMO, "recipes.model.global_batch_size=100"),
        ("recipes.model.global_batch_size=100", "data parallel 128"),
    ),
    "DeepSpeed batch identity": (
        (DS, "recipes.deepspeed.gradient_accumulation_steps=3"),
        (
            "recipes.deepspeed.global_batch_size=64",
            "micro_batch_size 2 x gradient_accumulation_steps 3 x data parallel size 8 = 48",
        ),
    ),
    "DeepSpeed global batch not a multiple of micro x DP": (
        (DS, "recipes.deepspeed.global_batch_size=60"),
        ("recipes.deepspeed.global_batch_size=60", "multiple of micro_batch_size 2"),
    ),
    "DeepSpeed parameter offload needs ZeRO-3": (
        (DS, "recipes.deepspeed.offload_param=true"),
        ("recipes.deepspeed.offload_param=true", "needs zero_stage 3 (got 2)"),
    ),
    "sequence longer than max position embeddings": (
        (L8B, "recipes.model.max_position_embeddings=4096"),
        ("recipes.model.max_context_width=8192", "must not exceed max_position_embeddings 4096"),
    ),
    "Trainium sequence longer than max position embeddings": (
        (TRN8B, "recipes.model.max_position_embeddings=2048"),
        ("recipes.model.encoder_seq_length=8192", "max_position_embeddings 2048"),
    ),
    "PEFT without do_finetune": (
        (LORA, MODEL, "recipes.model.do_finetune=false"),
        ("recipes.model.peft.peft_type=lora", "needs recipes.model.do_finetune=true"),
    ),
    "unknown PEFT type": (
        (LORA, MODEL, "recipes.model.peft.peft_type=ia3"),
        ("recipes.model.peft.peft_type", "one of 'lora', 'qlora_4bit' or null", "'ia3'"),
    ),
    "fine-tuning without a model": (
        (LORA,),
        ("recipes.model.hf_model_name_or_path=null", "HF_MODEL_NAME_OR_PATH"),
    ),
    "unknown dataset_type": (
        (L8B, "recipes.model.data.dataset_type=csv"),
        ("recipes.model.data.dataset_type", "one of 'hf', 'synthetic'", "'csv'"),
    ),
    "relative data path": (
        (L8B, "recipes.model.data.train_dir=data/train"),
        ("recipes.model.data.train_dir=data/train", "absolute path or an s3:// URI"),
    ),
    "malformed S3 URI": (
        (LORA, MODEL, "recipes.model.data.val_dir=s3://B"),
        ("recipes.model.data.val_dir=s3://B", "bucket 'B' is not an S3 bucket name"),
    ),
    "data path with whitespace": (
        (TRN8B, "recipes.data.train_dir='/fsx/my data'"),
        ("recipes.data.train_dir=/fsx/my data", "must not contain whitespace"),
    ),
}


@pytest.mark.parametrize("rule", RULES)
def test_rule_is_one_line_exit_2_and_nothing_written(rule: str, tmp_path: Path) -> None:
    overrides, fragments = RULES[rule]
    results = tmp_path / "results"
    proc = run_launcher(
        "cluster=slurm", "dry_run=true", f"base_results_dir={results}", *overrides, cwd=tmp_path
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert "Traceback" not in proc.stderr
    assert not results.exists(), sorted(results.rglob("*"))


def test_force_fp8_lets_an_fp8_recipe_run_off_p5(tmp_path: Path) -> None:
    proc = run_launcher(
        L8B,
        "cluster=slurm",
        "dry_run=true",
        "instance_type=p4d.24xlarge",
        "force_fp8=true",
        f"base_results_dir={tmp_path}",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "llama3-8b-seq8k-p5x16-pretrain" / "job.json").is_file()


def test_instance_rules_wait_for_an_instance_type() -> None:
    # Without instance_type the hardware is unknown: fp8 and accelerator kind are not judged.
    recipe = {"run": {"model_type": "neuron-hf"}, "model": {"fp8": True}}
    recipe_checks.check_instance(recipe, None)


def deepspeed_recipe(**section: object) -> dict[str, object]:
    base: dict[str, object] = {
        "config_file": "ds_config.json",
        "zero_stage": 3,
        "micro_batch_size": 1,
        "global_batch_size": 64,
        "gradient_accumulation_steps": None,
        "precision": "bf16",
        "grad_clip": 1.0,
    }
    return {
        "run": {"model_type": "deepspeed", "name": "ds"},
        "trainer": {"max_steps": 100, "log_every_n_steps": 5},
        "exp_manager": {"exp_dir": "/fsx/exp", "tensorboard": True},
        "model": {"optim": {"lr": 1e-5, "weight_decay": 0.1, "warmup_steps": 10}},
        "deepspeed": {**base, **section},
    }


def test_ds_config_holds_the_batch_identity_and_zero_settings() -> None:
    recipe = deepspeed_recipe(offload_optimizer=True, offload_param=True)
    ((name, text),) = ds_config.files(recipe, world=16)
    config = json.loads(text)
    assert name == "ds_config.json"
    assert config["train_batch_size"] == 64
    assert config["train_micro_batch_size_per_gpu"] == 1
    assert config["gradient_accumulation_steps"] == 4  # 64 / (1 x 16)
    zero = config["zero_optimization"]
    assert zero["stage"] == 3
    assert zero["offload_optimizer"] == {"device": "cpu", "pin_memory": True}
    assert zero["offload_param"] == {"device": "cpu", "pin_memory": True}
    assert zero["stage3_gather_16bit_weights_on_model_save"] is True
    assert config["bf16"] == {"enabled": True} and config["fp16"] == {"enabled": False}
    assert config["optimizer"]["type"] == "AdamW"
    assert config["scheduler"]["params"]["total_num_steps"] == 100
    assert config["tensorboard"]["output_path"] == "/fsx/exp/tensorboard"


def test_ds_config_without_offload_and_explicit_accumulation() -> None:
    recipe = deepspeed_recipe(zero_stage=2, micro_batch_size=2, gradient_accumulation_steps=4)
    config = ds_config.build(recipe, world=8)
    assert (config["train_batch_size"], config["gradient_accumulation_steps"]) == (64, 4)
    assert "offload_optimizer" not in config["zero_optimization"]
    assert "stage3_gather_16bit_weights_on_model_save" not in config["zero_optimization"]
    with pytest.raises(UserError, match="= 32"):
        ds_config.build(recipe, world=4)


def test_other_recipes_have_no_config_files() -> None:
    assert ds_config.files({"run": {"model_type": "hf"}, "model": {}}, world=8) == ()


def test_deepspeed_job_folder_holds_ds_config_and_the_entry_reads_it(tmp_path: Path) -> None:
    proc = run_launcher(
        DS,
        "cluster=slurm",
        "dry_run=true",
        f"base_results_dir={tmp_path}",
        "recipes.model.data.train_dir=/fsx/data",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    job_dir = tmp_path / "ds-llama3-8b-seq8k-zero2"
    assert json.loads((job_dir / "ds_config.json").read_text())["train_batch_size"] == 64
    assert "ds_config.json" in json.loads((job_dir / "job.json").read_text())["artifacts"]
    train = (job_dir / "train_script.sh").read_text()
    assert "/scripts/open_ft.py --config-path=" in train  # copied into the launch's folder
    assert f"{job_dir}/launches/" in train
    assert "resume_from_checkpoint" not in train  # the entry resumes by itself
    from hyperpod_launcher.examples import open_ft

    recipe = open_ft.load_recipe(str(job_dir), "ds-llama3-8b-seq8k-zero2_hydra.yaml", ())
    config = open_ft.deepspeed_config(recipe, str(job_dir))
    assert config is not None
    assert recipe["deepspeed"]["zero_stage"] == config["zero_optimization"]["stage"] == 2
    # Transformers' Trainer rejects settings that disagree with the DeepSpeed config
    args = open_ft.trainer_arguments(recipe, "sft", str(job_dir / "checkpoints"), config)
    assert args["deepspeed"] is config
    assert (args["per_device_train_batch_size"], args["gradient_accumulation_steps"]) == (2, 4)
    assert args["learning_rate"] == config["optimizer"]["params"]["lr"] == 2e-5
    assert args["max_steps"] == config["scheduler"]["params"]["total_num_steps"]
