"""cluster=sm_jobs rendering: bad input, the estimator-argument table, no SDK at render time.

The submit path (real SDK against moto) is in tests/integration/sagemaker/.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import subprocess
import sys
from pathlib import Path

import pytest

from hyperpod_launcher.backends.sm_jobs import checks as sagemaker_checks
from hyperpod_launcher.util.errors import UserError
from tests.conftest import REPO, run_launcher

LLAMA = "recipes=training/llama/hf_llama3_8b_seq8k_gpu_p5x16_pretrain"
NO_SDK = str(REPO / "tests" / "fixtures" / "no_sagemaker")
AEK = "cluster.sm_jobs_config.additional_estimator_kwargs"
SM = (
    "cluster=sm_jobs",
    "cluster.sm_jobs_config.output_path=s3://bucket/out",
    "cluster.sm_jobs_config.region=us-west-2",
)
SM_LLAMA = (LLAMA, *SM, "instance_type=ml.p5.48xlarge")
HF = "hf_not_a_real_token_321"
RUNNER = REPO / "hyperpod_launcher" / "backends" / "sm_jobs" / "runner.py"

# Bad inputs (and the SDK missing, below): one line, exit 2, nothing written.
CASES = {
    "both inputs": (
        (
            *SM_LLAMA,
            "cluster.sm_jobs_config.inputs.s3={train: s3://bucket/train}",
            "cluster.sm_jobs_config.inputs.file_system={id: fs-0123456789abcdef0, type: "
            "FSxLustre, directory_path: /fsx}",
        ),
        ["cluster.sm_jobs_config.inputs", "both s3 and file_system", "not both"],
    ),
    "output path not s3": (
        (*SM_LLAMA, "cluster.sm_jobs_config.output_path=/local/out"),
        ["cluster.sm_jobs_config.output_path='/local/out'", "s3:// URI"],
    ),
    "cpu instance for a recipe": (
        (
            *SM,
            LLAMA,
            "instance_type=ml.c5.18xlarge",
            "recipes.trainer.devices=1",
            "recipes.trainer.num_nodes=1",
            "recipes.model.tensor_model_parallel_degree=1",
            "recipes.model.shard_degree=1",
            "recipes.model.fp8=false",
        ),
        ["instance_type=ml.c5.18xlarge", "recipes need a GPU", "custom scripts only"],
    ),
    "non-scalar estimator kwarg": (
        (*SM_LLAMA, f"+{AEK}.max_run=[1,2]"),
        [f"{AEK}.max_run=[1, 2]", "the SDK takes int >= 1"],
    ),
    "mapping where the SDK takes a scalar": (
        (*SM_LLAMA, f"+{AEK}.volume_kms_key={{a: 1}}"),
        [f"{AEK}.volume_kms_key", "a non-empty string"],
    ),
    "role not an IAM role ARN": (
        (*SM_LLAMA, "cluster.sm_jobs_config.role=arn:aws:iam::123456789012:user/bob"),
        ["cluster.sm_jobs_config.role='arn:aws:iam::123456789012:user/bob'", "IAM role ARN"],
    ),
    "output path missing": (
        (LLAMA, "cluster=sm_jobs", "instance_type=ml.p5.48xlarge"),
        ["cluster.sm_jobs_config.output_path is not set", "s3://"],
    ),
    "unknown sm_jobs_config key": (
        (*SM_LLAMA, "+cluster.sm_jobs_config.ouput_path=s3://b"),
        ["unknown key 'cluster.sm_jobs_config.ouput_path'", "did you mean 'output_path'"],
    ),
    "unknown estimator kwarg": (
        (*SM_LLAMA, f"+{AEK}.max_runtime=10"),
        [f"{AEK}.max_runtime", "not an argument", "did you mean 'max_run'"],
    ),
    "launcher-owned estimator kwarg": (
        (*SM_LLAMA, f"+{AEK}.instance_count=4"),
        [f"{AEK}.instance_count", "recipes.trainer.num_nodes"],
    ),
    "file system without VPC": (
        (
            *SM_LLAMA,
            "cluster.sm_jobs_config.inputs.file_system={id: fs-0123456789abcdef0, type: "
            "FSxLustre, directory_path: /fsx}",
        ),
        ["inputs.file_system", "subnets", "security_group_ids"],
    ),
    "secret without a channel": (
        (*SM_LLAMA, f"recipes.model.hf_access_token={HF}"),
        ["HF_TOKEN", "secrets.secrets_manager.HF_TOKEN", "secrets.environment=true"],
    ),
    "secret in recipe_overrides": (
        (*SM_LLAMA, f"+cluster.sm_jobs_config.recipe_overrides.model.hf_access_token={HF}"),
        ["recipe_overrides.model.hf_access_token", "secrets do not go into recipe_overrides"],
    ),
    "instance type opted out": (
        (LLAMA, *SM, "instance_type=none"),
        ["instance_type is not set", "ml.p5.48xlarge"],
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_one_line_exit_2_and_writes_nothing(case: str, tmp_path: Path) -> None:
    overrides, expected = CASES[case]
    proc = run_launcher(*overrides, f"base_results_dir={tmp_path}")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    for fragment in expected:
        assert fragment in lines[0], lines[0]
    assert HF not in proc.stdout + proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_sdk_missing_is_one_line_naming_the_extra_and_writes_nothing(tmp_path: Path) -> None:
    # A job that lacks nothing else: the SDK is what submitting from this host needs.
    train = "+cluster.sm_jobs_config.inputs.s3.train=s3://bucket/train"
    proc = run_launcher(
        *SM_LLAMA, train, f"base_results_dir={tmp_path}", env={"PYTHONPATH": NO_SDK}
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "error: the SageMaker Python SDK is not installed: "
        "pip install 'hyperpod-launcher[sagemaker]'"
    ]
    assert list(tmp_path.iterdir()) == []


def test_dry_run_without_the_sdk_renders_and_prints_the_request(tmp_path: Path) -> None:
    proc = run_launcher(
        *SM_LLAMA, f"base_results_dir={tmp_path}", "dry_run=true", env={"PYTHONPATH": NO_SDK}
    )
    assert proc.returncode == 0, proc.stderr
    assert '"instance_type": "ml.p5.48xlarge"' in proc.stdout
    assert '"instance_count": 16' in proc.stdout
    assert "needs the SDK: pip install 'hyperpod-launcher[sagemaker]'" in proc.stdout
    (job_dir,) = tmp_path.iterdir()
    # launch.py is the package's runner, unchanged; what varies is the request beside it.
    assert (job_dir / "launch.py").read_text() == RUNNER.read_text()
    request = json.loads((job_dir / "sagemaker_request.json").read_text())
    assert request["recipe"]["training_recipe"] == "recipe.yaml" and request["script"] is None
    assert (job_dir / "recipe.yaml").is_file()
    assert (job_dir / f"{job_dir.name}_submission.sh").is_file()


def test_rendering_imports_no_sdk() -> None:
    code = (
        "import sys; from hyperpod_launcher.launch.compose import plan; "
        f"p = plan({list(SM_LLAMA)!r}); "
        "assert 'launch.py' in p.request.files; "
        "print([m for m in sys.modules if m.split('.')[0] in ('sagemaker', 'boto3', 'botocore')])"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def _plan(*overrides: str):
    from hyperpod_launcher.launch.compose import plan

    return plan(list(overrides))


def _request(*overrides: str) -> dict:
    """The request launch.py reads, as written into the job folder."""
    the_plan = _plan(*overrides)
    written = json.loads(the_plan.request.files["sagemaker_request.json"].text)
    assert written == the_plan.request.payload  # what submit sends is what was written
    return written


def test_user_values_reach_the_request_as_data() -> None:
    evil = "a'b\"c); import os; os.system('true') #"
    request = _request(*SM_LLAMA, "+env_vars.MY_VAR=" + repr(evil))  # Hydra's quoting is Python's
    assert request["environment"]["MY_VAR"] == evil


def test_default_cluster_file_never_raises_for_its_inputs() -> None:
    assert _request(*SM_LLAMA)["inputs"] == {"s3": None, "file_system": None}


def test_run_name_becomes_a_valid_training_job_name() -> None:
    name = _request(*SM_LLAMA, "recipes.run.name=my_run.v2_" + "x" * 80)["job_name"]
    assert sagemaker_checks.JOB_NAME.match(name) and len(name) <= 63
    assert name.startswith("my-run-v2-x") and name.endswith("-test")


def test_secret_is_never_written_with_the_environment_opt_in(tmp_path: Path) -> None:
    plan = _plan(
        *SM_LLAMA,
        f"recipes.model.hf_access_token={HF}",
        "cluster.sm_jobs_config.secrets.environment=true",
    )
    for relpath, rendered in plan.request.files.items():
        assert HF not in rendered.text, relpath
    assert HF not in str(plan) + repr(plan)
    request = json.loads(plan.request.files["sagemaker_request.json"].text)
    assert request["secret_env"] == ["HF_TOKEN"] and "HF_TOKEN" not in request["environment"]
    assert "hf_access_token: null" in plan.request.files["recipe.yaml"].text


def test_cpu_custom_script_reuses_the_per_node_train_script() -> None:
    plan = _plan(*SM, "instance_type=ml.c5.2xlarge", "training_cfg.run.nodes=3")
    files = plan.request.files
    (script,) = [p for p in files if p.endswith("/train_script.sh")]
    assert script.startswith("sm_source/test/")
    assert "cd /opt/ml/code" in files[script].text
    request = plan.request.payload
    assert request["mode"] == "custom_cpu"
    assert request["script"]["entry_point"] == "sm_node.py"
    assert request["script"]["distribution"] is None


def test_custom_script_on_trainium_needs_an_image() -> None:
    with pytest.raises(UserError, match="Neuron training image: set container="):
        _plan(*SM, "instance_type=ml.trn1.32xlarge", "training_cfg.run.ntasks_per_node=null")


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("arn:aws:iam::123456789012:role/service-role/AmazonSageMaker-ExecutionRole-1", True),
        ("arn:aws-cn:iam::123456789012:role/x", True),
        ("arn:aws:iam::123456789012:user/x", False),
        ("arn:aws:iam::12345:role/x", False),
        ("SageMakerRole", False),
    ],
)
def test_role_arn_rule(value: str, ok: bool) -> None:
    if ok:
        assert sagemaker_checks.role_arn(value) == value
    else:
        with pytest.raises(UserError):
            sagemaker_checks.role_arn(value)


def test_list_valued_estimator_kwargs_are_accepted() -> None:
    kwargs = sagemaker_checks.estimator_kwargs(
        {
            "subnets": ["subnet-1", "subnet-2"],
            "security_group_ids": ["sg-1"],
            "tags": [{"Key": "team", "Value": "ml"}],
            "max_run": 3600,
            "keep_alive_period_in_seconds": 600,
            "use_spot_instances": True,
            "max_wait": 7200,
            "volume_kms_key": None,
        }
    )
    assert kwargs["subnets"] == ["subnet-1", "subnet-2"] and "volume_kms_key" not in kwargs


def test_estimator_table_matches_the_installed_sdk() -> None:
    if importlib.util.find_spec("sagemaker") is None:
        pytest.skip("the SageMaker SDK is not installed")
    from sagemaker.estimator import EstimatorBase, Framework
    from sagemaker.pytorch import PyTorch

    params: set[str] = set()
    for cls in (PyTorch, Framework, EstimatorBase):
        params |= set(inspect.signature(cls.__init__).parameters) - {"self", "kwargs"}
    table = (
        set(sagemaker_checks.ESTIMATOR_KWARGS)
        | set(sagemaker_checks.OWNED_KWARGS)
        | set(sagemaker_checks.OBJECT_KWARGS)
    )
    assert set(sagemaker_checks.ESTIMATOR_KWARGS) <= params
    assert set(sagemaker_checks.OBJECT_KWARGS) <= params
    assert params - table == set(), "new SDK arguments: add them to the table"


def test_recipe_without_smp_ships_a_local_entry_script_with_torch_distributed() -> None:
    script = str(REPO / "hyperpod_launcher" / "examples" / "allreduce_smoke.py")
    request = _request(
        *SM_LLAMA,
        "recipes.model.model_type=hf",
        "recipes.use_smp_model=false",
        "recipes.model.tensor_model_parallel_degree=1",
        "recipes.model.fp8=false",
        "git.repo_url_or_path=null",
        f"git.entry_script={script}",
    )
    assert request["mode"] == "plain_recipe"
    assert request["ship"] == [[script, "allreduce_smoke.py"], ["recipe.yaml", "recipe.yaml"]]
    assert request["script"] == {
        "entry_point": "allreduce_smoke.py",
        "hyperparameters": {"config-path": "/opt/ml/code", "config-name": "recipe.yaml"},
        "distribution": {"torch_distributed": {"enabled": True}},
        "image_from": None,
    }
    assert request["estimator"]["framework_version"] == "2.5.1"
