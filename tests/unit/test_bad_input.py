"""Bad input: one line naming the key, the value and what is allowed; exit 2; nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_launcher

LLAMA = "recipes=training/llama/hf_llama3_8b_seq8k_gpu_p5x16_pretrain"
SLURM_LLAMA = (
    LLAMA,
    "recipes.run.name=llama-8b",
    "cluster=slurm",
    "instance_type=p5.48xlarge",
    "dry_run=true",
)

K8S_LLAMA = (*SLURM_LLAMA[:2], "cluster=k8s", "container=example.com/train:1", "dry_run=true")
SM_SCRIPT = (
    "cluster=sm_jobs",
    "cluster.sm_jobs_config.output_path=s3://bucket/jobs",
    "cluster.sm_jobs_config.role=arn:aws:iam::123456789012:role/r",
    "instance_type=ml.g5.12xlarge",
    "training_cfg.run.ntasks_per_node=null",
    "dry_run=true",
)


def script_args(*pairs: tuple[str, str]) -> str:
    return "training_cfg.script_args=[" + ", ".join(f"{{--{k}: {v}}}" for k, v in pairs) + "]"


CASES = {
    "unknown recipe": (
        ("recipes=training/llama/hf_llama3_8b_seq8k_gpu_p5x16_pretrian",),
        [
            "recipes=training/llama/hf_llama3_8b_seq8k_gpu_p5x16_pretrian",
            "unknown recipe",
            "did you mean 'training/llama/hf_llama3_8b_seq8k_gpu_p5x16_pretrain'",
        ],
    ),
    "unknown cluster": (("cluster=slurmm",), ["cluster=slurmm", "did you mean 'slurm'"]),
    "unknown top-level key (override)": (
        ("instance_typ=p5.48xlarge",),
        ["unknown key 'instance_typ'", "did you mean 'instance_type'"],
    ),
    "unknown top-level key (added)": (
        ("+instance_typ=p5.48xlarge",),
        ["unknown key 'instance_typ'", "did you mean 'instance_type'"],
    ),
    "unknown cluster key": (
        ("cluster=slurm", "+cluster.partiton=gpu"),
        ["unknown key 'cluster.partiton'", "did you mean 'partition'"],
    ),
    "unknown cluster key (override)": (
        ("cluster=slurm", "cluster.partiton=gpu"),
        ["unknown key 'cluster.partiton'", "did you mean 'cluster.partition'"],
    ),
    "moved cluster key": (
        ("cluster=slurm", "+cluster.nodes=4"),
        ["cluster.nodes", "recipes.trainer.num_nodes"],
    ),
    "missing base_results_dir": (("base_results_dir=null",), ["base_results_dir is not set"]),
    "zero nodes": (
        (*SLURM_LLAMA, "recipes.trainer.num_nodes=0"),
        ["recipes.trainer.num_nodes: expected int >= 1, got 0"],
    ),
    "zero cpus per task": (
        (*SLURM_LLAMA, "cluster.cpus_per_task=0"),
        ["cluster.cpus_per_task: expected int >= 1 or null, got 0"],
    ),
    "negative max_restarts": (("max_restarts=-1",), ["max_restarts: expected int >= 0, got -1"]),
    "negative nodes (custom)": (
        ("training_cfg.run.nodes=-2",),
        ["training_cfg.run.nodes: expected int >= 1, got -2"],
    ),
    "unsafe run name": (
        (*SLURM_LLAMA, "recipes.run.name='../../etc'"),
        ["recipes.run.name='../../etc'", "not a safe job name"],
    ),
    "local code path missing": (
        (*SLURM_LLAMA, "git.repo_url_or_path=/no/such/adapter"),
        ["git.repo_url_or_path", "/no/such/adapter", "does not exist"],
    ),
    "malformed container mount": (
        ("cluster=slurm", "container_mounts=[relative/path:/data]"),
        ["container_mounts", "relative/path:/data", "absolute paths"],
    ),
    "malformed cluster mount options": (
        ("cluster=slurm", "cluster.container_mounts=[/a:/b:rx]"),
        ["container_mounts", "/a:/b:rx", "options must be"],
    ),
    "cluster and cluster_type disagree": (
        ("cluster=slurm", "cluster_type=local"),
        ["cluster_type=local contradicts cluster=slurm"],
    ),
    "instance type not in table": (
        ("cluster=slurm", "instance_type=p9.96xlarge", "training_cfg.run.ntasks_per_node=null"),
        ["instance_type=p9.96xlarge: unknown instance type", "instance_devices=gpu:"],
    ),
    "devices do not match the instance": (
        (*SLURM_LLAMA, "recipes.trainer.devices=4"),
        ["recipes.trainer.devices=4", "p5.48xlarge", "8 devices"],
    ),
    "wrong type": (("dry_run=maybe",), ["dry_run", "expected bool", "'maybe'"]),
    "unknown sbatch option through the escape hatch": (
        ("cluster=slurm", "dry_run=true", "+cluster.additional_parameters.nodes=3"),
        ["cluster.additional_parameters.nodes", "launcher-owned"],
    ),
    "quote in an sbatch value": (
        ("cluster=slurm", "dry_run=true", "cluster.comment='a\"b'"),
        ["cluster.comment", "quotes"],
    ),
    "recipe and custom script together": (
        (LLAMA, "+training_cfg.entry_script=/bin/true"),
        ["both a recipe and training_cfg"],
    ),
    "entry script missing": (
        ("training_cfg.entry_script=/no/such/script.py",),
        ["training_cfg.entry_script", "/no/such/script.py", "does not exist"],
    ),
    "invalid env var name": (("+env_vars.BAD-NAME=x",), ["env_vars.BAD-NAME", "not a valid"]),
    "batch size 0 (Slurm)": (
        (*SLURM_LLAMA, "recipes.model.train_batch_size=0"),
        ["recipes.model.train_batch_size: expected int >= 1, got 0"],
    ),
    "batch size 0 (Kubernetes)": (
        (*K8S_LLAMA, "recipes.model.train_batch_size=0"),
        ["recipes.model.train_batch_size: expected int >= 1, got 0"],
    ),
    "negative max_steps": (
        (*SLURM_LLAMA, "recipes.trainer.max_steps=-3"),
        ["recipes.trainer.max_steps: expected int >= 1, got -3"],
    ),
    "learning rate not a number": (
        (*SLURM_LLAMA, "recipes.model.optim.lr=abc"),
        ["recipes.model.optim.lr: expected float > 0, got 'abc'"],
    ),
    "sharding strategy not the adapter's": (
        (*SLURM_LLAMA, "recipes.model.sharding_strategy=full_shrd"),
        ["recipes.model.sharding_strategy", "'full_shrd'", "did you mean 'full_shard'"],
    ),
    "time limit no backend reads (Slurm)": (
        (*SLURM_LLAMA, "recipes.run.time_limit=forever"),
        ["recipes.run.time_limit='forever'", "expected a time limit", "D-H:M:S", "UNLIMITED"],
    ),
    "time limit no backend reads (Kubernetes)": (
        (*K8S_LLAMA, "recipes.run.time_limit=forever"),
        ["recipes.run.time_limit='forever'", "expected a time limit", "D-H:M:S", "UNLIMITED"],
    ),
    "time limit no backend reads (custom script)": (
        ("cluster=slurm", "training_cfg.run.time_limit=1:2:3:4"),
        ["training_cfg.run.time_limit='1:2:3:4'", "expected a time limit"],
    ),
    "git URL with a space": (
        (*SLURM_LLAMA, "git.repo_url_or_path='https://exa mple.com/x.git'"),
        ["git.repo_url_or_path='https://exa mple.com/x.git'", "whitespace"],
    ),
    "git URL with a scheme git has no transport for": (
        (*SLURM_LLAMA, "git.repo_url_or_path=htps://example.com/x.git"),
        ["git.repo_url_or_path='htps://example.com/x.git'", "no transport for 'htps'", "https"],
    ),
    "git URL with a password, on every backend": (
        (*SLURM_LLAMA, "git.repo_url_or_path='https://user:hunter2@/x.git'"),
        ["the URL carries a password or token; remove it and set git.token"],
    ),
    "git URL with a token as its user name": (
        (*SLURM_LLAMA, "git.repo_url_or_path=https://ghp_abcdef0123@github.com/o/r.git"),
        ["the URL carries a password or token; remove it and set git.token"],
    ),
    "unknown recipe key": (
        (*SLURM_LLAMA, "recipes.model.train_batch_sise=2"),
        [
            "unknown key 'recipes.model.train_batch_sise'",
            "did you mean 'recipes.model.train_batch_size'",
            "to add a new key use +recipes.model.train_batch_sise=...",
        ],
    ),
    "sequence length 0": (
        (*SLURM_LLAMA, "recipes.model.max_context_width=0"),
        ["recipes.model.max_context_width: expected int >= 1, got 0"],
    ),
    "learning rate 0": (
        (*SLURM_LLAMA, "recipes.model.optim.lr=0.0"),
        ["recipes.model.optim.lr: expected float > 0, got 0.0"],
    ),
    "precision not the trainer's": (
        (*SLURM_LLAMA, "recipes.trainer.precision=bf17"),
        ["recipes.trainer.precision", "'bf17'", "did you mean 'bf16'"],
    ),
    "Trainium max_steps below -1": (
        (
            "recipes=training/llama/hf_llama3_8b_seq8k_trn1x4_pretrain",
            "cluster=slurm",
            "dry_run=true",
            "recipes.trainer.max_steps=-2",
        ),
        ["recipes.trainer.max_steps: expected int >= 1 or -1, got -2"],
    ),
    "NeMo micro batch 0": (
        (
            "recipes=training/llama/megatron_llama3_1_8b_nemo",
            "cluster=slurm",
            "dry_run=true",
            "recipes.model.micro_batch_size=0",
        ),
        ["recipes.model.micro_batch_size: expected int >= 1, got 0"],
    ),
    "open fine-tuning micro batch 0": (
        (
            "recipes=fine-tuning/qwen/open_qwen2_5_72b_seq4k_gpu_sft",
            "cluster=slurm",
            "dry_run=true",
            "recipes.model.micro_batch_size=0",
        ),
        ["recipes.model.micro_batch_size: expected int >= 1, got 0"],
    ),
    "time limit no backend reads (SageMaker)": (
        (*SM_SCRIPT, "+training_cfg.run.time_limit=forever"),
        ["training_cfg.run.time_limit='forever'", "expected a time limit", "UNLIMITED"],
    ),
    "SageMaker: more than 100 hyperparameters with the SDK's own": (
        (*SM_SCRIPT, script_args(*((f"a{i}", "1") for i in range(94)))),
        [
            "training_cfg.script_args: 94 hyperparameters and the SDK's 7 make 101",
            "at most 100 (CreateTrainingJob HyperParameters)",
        ],
    ),
    "SageMaker: hyperparameter name over 256 characters": (
        (*SM_SCRIPT, script_args(("k" * 257, "1"))),
        ["training_cfg.script_args: --'kkk", "257-character hyperparameter name", "at most 256"],
    ),
    "SageMaker: hyperparameter value over 2500 characters as sent": (
        (*SM_SCRIPT, script_args(("steps", "9" * 2499))),
        ["training_cfg.script_args: --steps='999", "2501 characters", "(JSON)", "at most 2500"],
    ),
    "SageMaker: more than 100 environment variables": (
        (*SM_SCRIPT, *(f"+env_vars.V{i}=1" for i in range(96))),
        ["env_vars: the job's environment has 101 variables", "at most 100"],
    ),
    "SageMaker: environment value over 512 characters": (
        (*SM_SCRIPT, f"+env_vars.LONG={'x' * 513}"),
        ["env_vars.LONG='xxx", "513 characters", "values of at most 512"],
    ),
    "SageMaker: more than 50 tags": (
        (
            *SM_SCRIPT,
            "+cluster.sm_jobs_config.additional_estimator_kwargs.tags={"
            + ", ".join(f"t{i}: v" for i in range(51))
            + "}",
        ),
        ["cluster.sm_jobs_config.additional_estimator_kwargs.tags: 51 tags", "at most 50"],
    ),
    "override key too long for Hydra": (
        (f"+env_vars.{'N' * 300}=1",),
        ["env_vars.NNNN", "an override key of 309 characters; at most 200"],
    ),
    "unparsable override": (
        ("container=nvcr.io#nvidia/pytorch:24.01-py3",),
        ["cannot parse override 'container=nvcr.io#nvidia/pytorch:24.01-py3'", "quote"],
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_one_line_exit_2_nothing_written(case: str, tmp_path: Path) -> None:
    overrides, expected = CASES[case]
    results = tmp_path / "results"
    proc = run_launcher(f"base_results_dir={results}", *overrides, cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ")
    for fragment in expected:
        assert fragment in lines[0], lines[0]
    assert "Traceback" not in proc.stderr
    assert list(tmp_path.iterdir()) == [], "nothing may be written"


def test_a_recipe_key_added_with_plus_is_kept(tmp_path: Path) -> None:
    proc = run_launcher(f"base_results_dir={tmp_path}", *SLURM_LLAMA, "+recipes.model.my_flag=1")
    assert proc.returncode == 0, proc.stderr
    assert "my_flag: 1" in (tmp_path / "llama-8b" / "llama-8b_hydra.yaml").read_text()


def test_instance_type_not_in_table_runs_with_its_devices_given(tmp_path: Path) -> None:
    proc = run_launcher(
        f"base_results_dir={tmp_path}",
        "cluster=slurm",
        "instance_type=ml.p9.96xlarge",
        "instance_devices=gpu:4",
        "dry_run=true",
    )
    assert proc.returncode == 0, proc.stderr
    assert "--nproc-per-node=4" in (tmp_path / "allreduce-smoke" / "train_script.sh").read_text()


def test_full_error_env_keeps_a_user_error_on_one_line(tmp_path: Path) -> None:
    """Every HyperPod launch script sets HYDRA_FULL_ERROR=1: a user error stays one line."""
    proc = run_launcher(
        f"base_results_dir={tmp_path}", "instance_typ=x", env={"HYDRA_FULL_ERROR": "1"}
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: unknown key 'instance_typ' (did you mean 'instance_type' or 'instance_devices'?); "
        "to add a new key use +instance_typ=..."
    ]


def test_relaunch_keeps_the_earlier_launch(tmp_path: Path) -> None:
    common = (f"base_results_dir={tmp_path}", "cluster=slurm", "dry_run=true")
    first = run_launcher(*common, "training_cfg.run.ntasks_per_node=2")
    second = run_launcher(*common, "training_cfg.run.ntasks_per_node=3")
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    job_dir = tmp_path / "allreduce-smoke"
    assert "--nproc-per-node=3" in (job_dir / "train_script.sh").read_text()
    newest = json.loads((job_dir / "job.json").read_text())["launch_id"]
    launches = {d.name: d for d in (job_dir / "launches").iterdir()}
    assert len(launches) == 2 and newest in launches
    (earlier,) = (d for name, d in launches.items() if name != newest)
    assert "--nproc-per-node=2" in (earlier / "train_script.sh").read_text()
    assert (earlier / "launcher_cmd.log").is_file()


def test_custom_script_may_start_fewer_processes_than_devices(tmp_path: Path) -> None:
    common = (
        f"base_results_dir={tmp_path}",
        "cluster=slurm",
        "instance_type=p4d.24xlarge",
        "dry_run=true",
    )
    fewer = run_launcher(*common, "training_cfg.run.ntasks_per_node=2")
    assert fewer.returncode == 0, fewer.stderr
    more = run_launcher(*common, "training_cfg.run.ntasks_per_node=9")
    assert more.returncode == 2
    assert "training_cfg.run.ntasks_per_node=9 does not match" in more.stderr
