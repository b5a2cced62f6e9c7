"""cluster=sm_jobs end to end: the real SageMaker SDK 2.x against moto on 127.0.0.1.

Each test runs the launcher as a user would and asserts on what AWS received: the recorded
CreateTrainingJob body, DescribeTrainingJob, and the source archive uploaded to S3.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import BUCKET, ROLE_ARN, archive, hyperparameters, sm, submit

from tests.conftest import run_launcher

LLAMA = "recipes=training/llama/hf_llama3_8b_seq8k_gpu_p5x16_pretrain"
TRN = "recipes=training/llama/hf_llama3_8b_seq8k_trn1x4_pretrain"
SYNTHETIC = "recipes.model.data.use_synthetic_data=true"  # a submit needs data or this
HF = "hf_not_a_real_token_789"


def the_job_dir(tmp_path: Path) -> Path:
    (record,) = tmp_path.glob("*/job.json")
    return record.parent


def test_llama_recipe_becomes_the_sdk_recipe_training_job(moto: Any, tmp_path: Path) -> None:
    create, proc = submit(
        moto,
        LLAMA,
        *sm(
            "instance_type=ml.p5.48xlarge",
            "recipes.trainer.num_nodes=2",
            "recipes.model.shard_degree=8",
            f"git.repo_url_or_path={moto.adapter.path}",
            f"git.commit={moto.adapter.first}",
            "+env_vars.MY_SETTING=on",
            f"cluster.sm_jobs_config.inputs.s3={{train: s3://{BUCKET}/data/train, "
            f"val: s3://{BUCKET}/data/val}}",
            "+cluster.sm_jobs_config.additional_estimator_kwargs.max_run=7200",
            "+cluster.sm_jobs_config.additional_estimator_kwargs.tags=[{Key: team, Value: ml}]",
            "+cluster.sm_jobs_config.additional_estimator_kwargs.checkpoint_s3_uri="
            f"s3://{BUCKET}/ckpt",
            "+cluster.sm_jobs_config.recipe_overrides.trainer.max_steps=7",
            tmp_path=tmp_path,
        ),
    )
    job_dir = the_job_dir(tmp_path)
    record = json.loads((job_dir / "job.json").read_text())
    name = create["TrainingJobName"]
    assert record["job_id"] == name and record["submit"]["status"] == "submitted"
    assert record["details"]["training_job_arn"].endswith(f":training-job/{name}")
    assert name.startswith(job_dir.name.replace("_", "-")[:30]) and len(name) <= 63
    assert f"submitted sm_jobs job {name}" in proc.stdout

    assert create["AlgorithmSpecification"]["TrainingImage"].endswith(
        ".dkr.ecr.us-west-2.amazonaws.com/smdistributed-modelparallel:2.4.1-gpu-py311-cu121"
    )
    assert create["ResourceConfig"]["InstanceType"] == "ml.p5.48xlarge"
    assert create["ResourceConfig"]["InstanceCount"] == 2
    assert create["RoleArn"] == ROLE_ARN
    assert create["OutputDataConfig"]["S3OutputPath"] == f"s3://{BUCKET}/jobs"
    assert create["StoppingCondition"]["MaxRuntimeInSeconds"] == 7200
    assert create["CheckpointConfig"]["S3Uri"] == f"s3://{BUCKET}/ckpt"
    assert {"Key": "team", "Value": "ml"} in create["Tags"]
    channels = {
        c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"]
        for c in create["InputDataConfig"]
    }
    assert channels == {"train": f"s3://{BUCKET}/data/train", "val": f"s3://{BUCKET}/data/val"}
    hyper = hyperparameters(create)
    assert hyper["sagemaker_program"] == "llama_pretrain.py"
    assert hyper["config-path"] == "."
    assert hyper["sagemaker_torch_distributed_enabled"] is True
    assert create["Environment"]["MY_SETTING"] == "on"
    assert create["Environment"]["NCCL_DEBUG"] == "WARN"
    assert not any("TOKEN" in key for key in create["Environment"])

    described = moto.client("sagemaker").describe_training_job(TrainingJobName=name)
    assert described["TrainingJobArn"] == record["details"]["training_job_arn"]
    assert described["ResourceConfig"]["InstanceCount"] == 2

    files = archive(moto, create)
    # The adapter script comes from the launcher's pinned checkout (git.commit), not HEAD.
    assert files["llama_pretrain.py"] == b"print('llama v1')\n"
    shipped = yaml.safe_load(files[hyper["config-name"]])
    written = yaml.safe_load((job_dir / "recipe.yaml").read_text())
    assert shipped == written
    assert shipped["trainer"]["num_nodes"] == 2 and shipped["trainer"]["max_steps"] == 7
    assert shipped["model"]["hf_access_token"] is None


def test_trainium_recipe_clones_nxd_training_from_the_pinned_checkout(
    moto: Any, tmp_path: Path
) -> None:
    """The SDK clones NxD Training from a fixed URL; launch.py serves that clone from the
    launcher's checkout at the pinned commit, ahead of any other rewrite of the URL (the
    stand-in's own sends it to the fixture's newer commit)."""
    create, proc = submit(
        moto,
        TRN,
        *sm(
            "instance_type=ml.trn1.32xlarge",
            "recipes.trainer.num_nodes=1",
            f"git.commit={moto.adapter.first}",
            # NxD Training needs both, where the job sees them: in the train channel
            "+cluster.sm_jobs_config.inputs.s3.train=s3://bucket/train",
            "recipes.data.train_dir=/opt/ml/input/data/train",
            "recipes.model.model_config=/opt/ml/input/data/train/llama3-8b/config.json",
            tmp_path=tmp_path,
        ),
    )
    hyper = hyperparameters(create)
    assert hyper["sagemaker_program"] == "training_orchestrator.py"
    files = archive(moto, create)
    assert files["training_orchestrator.py"] == b"print('neuron v1')\n"
    # NxD Training's package from the checkout, next to the entry: ahead of the image's copy.
    assert files["neuronx_distributed_training/__init__.py"] == b"VERSION = 'v1'\n"
    assert "warning:" not in proc.stdout + proc.stderr
    assert "/pytorch-training-neuronx:" in create["AlgorithmSpecification"]["TrainingImage"]
    checkout = next(the_job_dir(tmp_path).glob("code/*"))
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=checkout, capture_output=True, text=True, check=True
    )
    assert head.stdout.strip() == moto.adapter.first


def test_a_pinned_checkout_without_the_package_says_so_in_one_line(
    moto: Any, tmp_path: Path
) -> None:
    """The adapter recipe's own repository (here the fixture, which has no src/ package): the
    job runs the image's installed adapter, and the submit says so."""
    moto.start_recording()
    proc = run_launcher(
        LLAMA,
        *sm(
            "instance_type=ml.p5.48xlarge",
            "recipes.trainer.num_nodes=1",
            "recipes.model.shard_degree=4",
            SYNTHETIC,
            f"git.commit={moto.adapter.first}",
            tmp_path=tmp_path,
        ),
        env=moto.env,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    warnings = [line for line in proc.stdout.splitlines() if line.startswith("warning:")]
    assert warnings == [
        "warning: the checkout has no src/hyperpod_nemo_adapter; the image's installed copy runs"
    ]
    (create,) = moto.calls("CreateTrainingJob")
    files = archive(moto, create)
    assert files["llama_pretrain.py"] == b"print('llama v1')\n"
    assert not any(name.startswith("hyperpod_nemo_adapter") for name in files)


def test_secret_reaches_the_job_environment_only_on_opt_in(moto: Any, tmp_path: Path) -> None:
    create, proc = submit(
        moto,
        LLAMA,
        *sm(
            "instance_type=p5.48xlarge",
            "recipes.trainer.num_nodes=1",
            "recipes.model.shard_degree=4",
            f"recipes.model.hf_access_token={HF}",
            "cluster.sm_jobs_config.secrets.environment=true",
            SYNTHETIC,
            tmp_path=tmp_path,
        ),
    )
    assert create["Environment"]["HF_TOKEN"] == HF
    # AWS returns it again in DescribeTrainingJob's Environment (docs/backends/sm_jobs.md);
    # moto omits the field.
    assert HF not in proc.stdout + proc.stderr
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert HF.encode() not in path.read_bytes(), path
    for name, data in archive(moto, create).items():
        assert HF.encode() not in data, name


def test_custom_script_on_gpu_uses_torch_distributed(moto: Any, tmp_path: Path) -> None:
    create, _ = submit(
        moto,
        *sm(
            "instance_type=ml.g5.12xlarge",
            "training_cfg.run.ntasks_per_node=null",
            "training_cfg.script_args=[{--steps: 3}]",
            tmp_path=tmp_path,
        ),
    )
    hyper = hyperparameters(create)
    assert hyper["sagemaker_program"] == "allreduce_smoke.py"
    assert hyper["sagemaker_torch_distributed_enabled"] is True
    assert hyper["steps"] == "3"
    assert create["AlgorithmSpecification"]["TrainingImage"].endswith(
        "/pytorch-training:2.5.1-gpu-py311"
    )
    assert create["ResourceConfig"] == {
        "InstanceType": "ml.g5.12xlarge",
        "InstanceCount": 1,
        "VolumeSizeInGB": 30,
    }
    assert set(archive(moto, create)) == {"allreduce_smoke.py"}


def test_custom_script_on_cpu_runs_the_per_node_script(moto: Any, tmp_path: Path) -> None:
    create, _ = submit(
        moto,
        *sm(
            "instance_type=ml.c5.2xlarge",
            "training_cfg.run.nodes=2",
            "training_cfg.script_args=[{--steps: 3}]",
            tmp_path=tmp_path,
        ),
    )
    hyper = hyperparameters(create)
    assert hyper["sagemaker_program"] == "sm_node.py"
    assert "sagemaker_torch_distributed_enabled" not in hyper
    assert create["ResourceConfig"]["InstanceCount"] == 2
    assert create["AlgorithmSpecification"]["TrainingImage"].endswith(
        "/pytorch-training:2.5.1-cpu-py311"
    )
    files = archive(moto, create)
    assert set(files) == {"allreduce_smoke.py", "sm_node.py", "train_script.sh"}
    script = files["train_script.sh"].decode()
    assert "cd /opt/ml/code" in script
    assert "--nproc-per-node=2" in script
    assert "allreduce_smoke.py --steps 3" in script


def test_failed_submit_exits_1_with_the_aws_error_and_keeps_artifacts(
    moto: Any, tmp_path: Path
) -> None:
    proc = run_launcher(
        *sm(
            "instance_type=ml.c5.2xlarge",
            "cluster.sm_jobs_config.output_path=s3://no-such-bucket-hpl/jobs",
            tmp_path=tmp_path,
        ),
        env=moto.env,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("error: SageMaker submit failed: ")
    assert "NoSuchBucket" in line
    job_dir = the_job_dir(tmp_path)
    assert (job_dir / "launch.py").is_file()
    record = json.loads((job_dir / "job.json").read_text())
    assert record["submit"]["status"] == "failed" and "NoSuchBucket" in record["error"]


def test_dry_run_prints_the_exact_request_and_sends_nothing(moto: Any, tmp_path: Path) -> None:
    moto.start_recording()
    proc = run_launcher(
        LLAMA,
        *sm("instance_type=ml.p5.48xlarge", "dry_run=true", tmp_path=tmp_path),
        env=moto.env,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert moto.recording() == []  # no AWS call, no upload
    job_dir = the_job_dir(tmp_path)
    request = json.loads((job_dir / "create_training_job.json").read_text())
    assert request["ResourceConfig"]["InstanceCount"] == 16
    assert request["RoleArn"] == ROLE_ARN
    assert f'"TrainingJobName": "{request["TrainingJobName"]}"' in proc.stdout
    assert "CreateTrainingJob request:" in proc.stdout
    record = json.loads((job_dir / "job.json").read_text())
    assert record["submit"]["status"] == "dry_run"
    assert "create_training_job.json" in record["artifacts"]


def test_secrets_manager_reference_reaches_the_job_and_the_value_does_not(
    moto: Any, tmp_path: Path
) -> None:
    arn = moto.client("secretsmanager").create_secret(Name="hpl-hf-token", SecretString=HF)["ARN"]
    create, _ = submit(
        moto,
        LLAMA,
        *sm(
            "instance_type=ml.p5.48xlarge",
            "recipes.trainer.num_nodes=1",
            "recipes.model.shard_degree=4",
            f"recipes.model.hf_access_token={HF}",
            f"+cluster.sm_jobs_config.secrets.secrets_manager.HF_TOKEN={arn}",
            SYNTHETIC,
            tmp_path=tmp_path,
        ),
    )
    assert HF not in json.dumps(create)
    environment = create["Environment"]
    assert json.loads(environment["HPL_SECRETS_MANAGER"]) == {"HF_TOKEN": arn}
    assert environment["HPL_ENTRY_POINT"] == "llama_pretrain.py"
    assert environment["HPL_SECRETS_REGION"] == "us-west-2"
    assert json.loads(create["HyperParameters"]["sagemaker_program"]) == "hpl_secrets.py"

    # Start the shipped wrapper as the job would, with a probe in place of the adapter script.
    code = tmp_path / "opt-ml-code"
    for name, data in archive(moto, create).items():
        assert HF.encode() not in data, name
        (code / name).parent.mkdir(parents=True, exist_ok=True)
        (code / name).write_bytes(data)
    (code / "probe.py").write_text(
        "import os, sys, json\n"
        f"print(json.dumps([os.environ.get('HF_TOKEN') == {HF!r}, sys.argv[1:]]))\n"
    )
    job_env = {**environment, "HPL_ENTRY_POINT": "probe.py"}
    ran = subprocess.run(
        [sys.executable, "hpl_secrets.py", "--config-path", "."],
        cwd=code,
        env={**os.environ, **moto.env, **job_env},
        capture_output=True,
        text=True,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout) == [True, ["--config-path", "."]]


def test_recipe_the_sdk_cannot_run_uses_the_adapter_script_as_entry_point(
    moto: Any, tmp_path: Path
) -> None:
    create, _ = submit(
        moto,
        LLAMA,
        *sm(
            "instance_type=ml.p5.48xlarge",
            "recipes.trainer.num_nodes=1",
            "recipes.model.shard_degree=4",
            "recipes.model.model_type=falcon",
            f"git.repo_url_or_path={moto.adapter.path}",
            "git.entry_script=examples/custom_model/custom_pretrain.py",
            SYNTHETIC,
            tmp_path=tmp_path,
        ),
    )
    hyper = hyperparameters(create)
    assert hyper["sagemaker_program"] == "examples/custom_model/custom_pretrain.py"
    assert hyper["config-path"] == "/opt/ml/code" and hyper["config-name"] == "recipe.yaml"
    assert hyper["sagemaker_torch_distributed_enabled"] is True
    assert hyper["mp_parameters"] == {"placement_strategy": "cluster"}
    assert (
        "/smdistributed-modelparallel:2.4.1-gpu-py311-cu121"
        in (create["AlgorithmSpecification"]["TrainingImage"])
    )
    files = archive(moto, create)
    assert "examples/custom_model/custom_pretrain.py" in files
    assert yaml.safe_load(files["recipe.yaml"])["model"]["model_type"] == "falcon"
    assert not any(name.startswith(".git/") for name in files)


@pytest.mark.parametrize(
    ("overrides", "program", "image"),
    [
        (
            ("recipes.model.model_type=mistral",),
            "mistral_pretrain.py",
            "smdistributed-modelparallel",
        ),
        (
            ("recipes.model.model_type=mixtral",),
            "mixtral_pretrain.py",
            "smdistributed-modelparallel",
        ),
        (
            (
                "recipes=training/llama/hf_llama3_8b_seq8k_trn1x4_pretrain",
                "instance_type=ml.trn1.32xlarge",
                "recipes.trainer.num_nodes=1",
            ),
            "training_orchestrator.py",
            "/pytorch-training-neuronx:",
        ),
    ],
    ids=["mistral", "mixtral", "trainium"],
)
def test_dry_run_picks_the_sdk_recipe_script(
    moto: Any, tmp_path: Path, overrides: tuple[str, ...], program: str, image: str
) -> None:
    recipe = next((o for o in overrides if o.startswith("recipes=")), LLAMA)
    rest = [o for o in overrides if not o.startswith("recipes=")]
    proc = run_launcher(
        recipe,
        *sm("instance_type=ml.p5.48xlarge", "dry_run=true", *rest, tmp_path=tmp_path),
        env=moto.env,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    request = json.loads((the_job_dir(tmp_path) / "create_training_job.json").read_text())
    assert json.loads(request["HyperParameters"]["sagemaker_program"]) == program
    assert image in request["AlgorithmSpecification"]["TrainingImage"]


def test_wait_true_blocks_until_the_job_ends_and_records_its_status(
    moto: Any, tmp_path: Path
) -> None:
    proc = run_launcher(
        *sm("instance_type=ml.c5.2xlarge", "cluster.sm_jobs_config.wait=true", tmp_path=tmp_path),
        env=moto.env,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    record = json.loads((the_job_dir(tmp_path) / "job.json").read_text())
    assert record["details"]["training_job_status"] == "Completed"  # moto finishes at once
    assert record["submit"]["status"] == "succeeded"


def test_time_limit_is_max_run_and_checkpoints_go_to_the_synced_folder(
    moto: Any, tmp_path: Path
) -> None:
    create, _ = submit(
        moto,
        LLAMA,
        *sm(
            "instance_type=ml.p5.48xlarge",
            "recipes.trainer.num_nodes=2",
            "recipes.model.shard_degree=8",
            "recipes.run.time_limit=3-00:00:00",
            SYNTHETIC,
            "recipes.exp_manager.checkpoint_dir=/fsx/not/on/sagemaker",
            f"git.repo_url_or_path={moto.adapter.path}",
            f"git.commit={moto.adapter.first}",
            "+cluster.sm_jobs_config.additional_estimator_kwargs.checkpoint_s3_uri="
            f"s3://{BUCKET}/ckpt",
            tmp_path=tmp_path,
        ),
    )
    assert create["StoppingCondition"]["MaxRuntimeInSeconds"] == 3 * 86400
    assert create["CheckpointConfig"]["S3Uri"] == f"s3://{BUCKET}/ckpt"
    assert create["CheckpointConfig"].get("LocalPath", "/opt/ml/checkpoints") == (
        "/opt/ml/checkpoints"
    )
    files = archive(moto, create)
    hyper = hyperparameters(create)
    shipped = yaml.safe_load(files[hyper["config-name"]])
    assert shipped["exp_manager"]["checkpoint_dir"] == "/opt/ml/checkpoints"


def test_a_time_limit_beyond_28_days_is_capped_with_one_line(moto: Any, tmp_path: Path) -> None:
    create, proc = submit(
        moto,
        LLAMA,
        *sm(
            "instance_type=ml.p5.48xlarge",
            "recipes.trainer.num_nodes=2",
            "recipes.model.shard_degree=8",
            "recipes.run.time_limit=40-00:00:00",
            SYNTHETIC,
            f"git.repo_url_or_path={moto.adapter.path}",
            f"git.commit={moto.adapter.first}",
            tmp_path=tmp_path,
        ),
    )
    assert create["StoppingCondition"]["MaxRuntimeInSeconds"] == 2419200
    (warning,) = [line for line in proc.stdout.splitlines() if line.startswith("warning:")]
    assert warning.startswith(
        "warning: run.time_limit=40-00:00:00 (3456000 s) is beyond SageMaker's maximum run time "
        "of 28 days (MaxRuntimeInSeconds 1-2419200); max_run=2419200"
    )


def _script_args(count: int) -> str:
    return "training_cfg.script_args=[" + ", ".join(f"{{--a{i}: {i}}}" for i in range(count)) + "]"


def test_a_request_at_createtrainingjobs_limits_is_sent_and_one_over_is_refused(
    moto: Any, tmp_path: Path
) -> None:
    """The SDK adds SDK_HYPERPARAMETERS of its own: 93 script arguments make 100, as sent.
    The job's environment (the launcher's 5 NCCL/torch variables here) plus 95 env_vars
    make 100. One more of either is one line, exit 2, before any upload or AWS call."""
    from hyperpod_launcher.backends.sm_jobs import checks

    script = ("instance_type=ml.g5.12xlarge", "training_cfg.run.ntasks_per_node=null")
    env_vars = [f"+env_vars.V{i}=1" for i in range(95)]
    user_hps = 100 - checks.SDK_HYPERPARAMETERS
    create, proc = submit(
        moto,
        *sm(*script, _script_args(user_hps), *env_vars, tmp_path=tmp_path / "at"),
    )
    assert len(create["HyperParameters"]) == 100
    sdk_own = set(create["HyperParameters"]) - {f"a{i}" for i in range(user_hps)}
    assert len(sdk_own) == checks.SDK_HYPERPARAMETERS, sdk_own
    assert len(create["Environment"]) == 100

    for over, fragment in (
        ((_script_args(user_hps + 1), *env_vars), "94 hyperparameters and the SDK's 7 make 101"),
        ((_script_args(3), *env_vars, "+env_vars.ONE_MORE=1"), "has 101 variables"),
    ):
        moto.start_recording()
        results = tmp_path / "over"
        proc = run_launcher(*sm(*script, *over, tmp_path=results), env=moto.env)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        (line,) = proc.stderr.strip().splitlines()
        assert line.startswith("error: ") and fragment in line, line
        assert moto.recording() == []  # no upload, no AWS call
        assert not results.exists() or list(results.iterdir()) == []


def test_create_training_job_declares_the_metric_definitions(moto: Any, tmp_path: Path) -> None:
    import re

    from hyperpod_launcher.telemetry.node_watch import format_line

    create, _ = submit(moto, *sm("instance_type=ml.g5.12xlarge", tmp_path=tmp_path))
    definitions = create["AlgorithmSpecification"]["MetricDefinitions"]
    line = format_line(
        {
            "event": "step",
            "step": 12,
            "max_steps": 50,
            "loss": 1.83,
            "lr": 2e-05,
            "tokens": 4096,
            "steps": 1,
            "step_time_s": 0.5,
            "memory_gib": 61.5,
            "model": {"params": 10},
        }
    )
    values = {d["Name"]: float(re.search(d["Regex"], line).group(1)) for d in definitions}
    assert values == {
        "hpl:step": 12,
        "hpl:loss": 1.83,
        "hpl:learning_rate": 2e-05,
        "hpl:tokens": 4096,
        "hpl:step_time_s": 0.5,
        "hpl:memory_gib": 61.5,
    }
    assert all(re.search(d["Regex"], 'open_ft step 12 {"loss": 1.0}') is None for d in definitions)
