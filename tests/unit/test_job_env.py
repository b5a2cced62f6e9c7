"""The default job environment table, and the per-node script that applies it, run for real."""

from __future__ import annotations

import resource
from pathlib import Path

import yaml

from hyperpod_launcher.config import instances
from hyperpod_launcher.launch.compose import plan
from hyperpod_launcher.spec.env import ENV_TABLE, JobFacts, default_env, open_files_limit
from tests.unit import node_script

GPU_MULTI_NODE = {
    "CUDA_DEVICE_MAX_CONNECTIONS",
    "TORCH_DIST_INIT_BARRIER",
    "NCCL_IGNORE_DISABLED_P2P",
}
LLAMA_P5 = (
    "recipes=training/llama/hf_llama3_8b_seq8k_gpu_p5x16_pretrain",
    "cluster=slurm",
    "instance_type=p5.48xlarge",
)
LLAMA_TRN = (
    "recipes=training/llama/hf_llama3_8b_seq8k_trn1x4_pretrain",
    "cluster=slurm",
    "instance_type=trn1.32xlarge",
)


def facts(instance: str | None, nodes: int = 2, stack: str | None = "adapter") -> JobFacts:
    found = instances.lookup(instance)
    return JobFacts(found.accelerator if found else "cpu", found, nodes, stack)


def test_one_row_per_variable() -> None:
    names = [name for name, *_ in ENV_TABLE]
    assert len(names) == len(set(names))


def test_gpu_rows() -> None:
    env = default_env(facts("p5.48xlarge"))
    assert {k: env[k] for k in GPU_MULTI_NODE} == dict.fromkeys(GPU_MULTI_NODE, "1")
    assert env["FI_PROVIDER"] == "efa" and env["FI_EFA_USE_DEVICE_RDMA"] == "1"
    assert "MALLOC_ARENA_MAX" not in env and "FI_EFA_FORK_SAFE" not in env
    # Transformer Engine's overlap only concerns the adapter and NeMo (Megatron) stacks.
    assert "CUDA_DEVICE_MAX_CONNECTIONS" in default_env(facts("p5.48xlarge", stack="nemo"))
    assert "CUDA_DEVICE_MAX_CONNECTIONS" not in default_env(facts("p5.48xlarge", stack="open"))
    assert "CUDA_DEVICE_MAX_CONNECTIONS" not in default_env(facts("p5.48xlarge", stack=None))
    # EFA only between nodes; g5 has EFA but no RDMA reads.
    assert "FI_PROVIDER" not in default_env(facts("p5.48xlarge", nodes=1))
    assert "FI_EFA_USE_DEVICE_RDMA" not in default_env(facts("g5.48xlarge"))
    assert open_files_limit(facts("p5.48xlarge")) is None


def test_trainium_rows() -> None:
    env = default_env(facts("trn1.32xlarge", stack="neuron"))
    assert env["MALLOC_ARENA_MAX"] == "128"
    assert env["FI_EFA_FORK_SAFE"] == "1" and env["FI_EFA_USE_DEVICE_RDMA"] == "1"
    assert not GPU_MULTI_NODE & set(env) and "NCCL_SOCKET_IFNAME" not in env
    assert open_files_limit(facts("trn1.32xlarge", stack="neuron")) == 65535


def test_cpu_jobs_get_nothing() -> None:
    assert default_env(facts(None, stack=None)) == {}
    assert open_files_limit(facts(None, stack=None)) is None


def run_plan(
    tmp_path: Path, *overrides: str, nofile: tuple[int, int] | None = None
) -> tuple[dict[str, object], str]:
    the_plan = plan([*overrides, f"base_results_dir={tmp_path}"])
    # The checkout, with the pinned training code's package (no warning about it).
    (Path(the_plan.spec.workdir) / (the_plan.spec.code_package or "")).mkdir(parents=True)
    names = (*GPU_MULTI_NODE, "MALLOC_ARENA_MAX", "NCCL_DEBUG")
    proc, calls = node_script.run(
        the_plan.request.files["train_script.sh"].text, tmp_path, env_names=names, nofile=nofile
    )
    assert proc.returncode == 0, proc.stderr
    (call,) = calls
    return call, proc.stderr


def test_gpu_job_exports_the_table_and_env_vars_win(tmp_path: Path) -> None:
    call, _ = run_plan(tmp_path, *LLAMA_P5, "+env_vars.TORCH_DIST_INIT_BARRIER=0")
    assert call["env"] == {
        "CUDA_DEVICE_MAX_CONNECTIONS": "1",
        "TORCH_DIST_INIT_BARRIER": "0",
        "NCCL_IGNORE_DISABLED_P2P": "1",
        "MALLOC_ARENA_MAX": None,
        # On an EFA instance the watcher asks NCCL for its network choice (INIT,NET lines).
        "NCCL_DEBUG": "INFO",
    }


def test_trainium_job_raises_open_files_and_caps_malloc_arenas(tmp_path: Path) -> None:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    call, stderr = run_plan(tmp_path, *LLAMA_TRN, nofile=(1024, hard))
    assert call["env"]["MALLOC_ARENA_MAX"] == "128"
    assert call["env"]["CUDA_DEVICE_MAX_CONNECTIONS"] is None
    if hard == resource.RLIM_INFINITY or hard >= 65535:
        assert (call["nofile"], stderr) == (65535, "")
    else:  # this machine's hard limit is lower (raising it needs CAP_SYS_RESOURCE)
        assert call["nofile"] == 1024 and f"(hard limit {hard})" in stderr


def test_a_lower_hard_limit_is_one_warning_not_a_failure(tmp_path: Path) -> None:
    call, stderr = run_plan(tmp_path, *LLAMA_TRN, nofile=(1024, 4096))
    assert call["nofile"] == 1024
    assert stderr.strip() == (
        "warning: cannot raise the open-files limit to 65535 (hard limit 4096)"
    )


def test_kubernetes_pods_and_sagemaker_jobs_get_the_table(tmp_path: Path) -> None:
    cases = (
        (LLAMA_P5[0], "p5.48xlarge", GPU_MULTI_NODE),
        (LLAMA_TRN[0], "trn1.32xlarge", {"MALLOC_ARENA_MAX"}),
    )
    for recipe, instance, wanted in cases:
        k8s = plan([recipe, "cluster=k8s", f"instance_type={instance}",
                    "container=example.com/t:1",
                    f"base_results_dir={tmp_path / 'k8s'}"])  # fmt: skip
        env = dict(k8s.spec.env)
        assert wanted <= set(env)
        values = yaml.safe_load(k8s.files["k8s_template/values.yaml"][0])
        script = values["scripts"]["train_script.sh"]  # every pod's per-node script
        for name in env:
            assert f"export {name}=" in script, name
        assert ("ulimit -n 65535" in script) == instance.startswith("trn")

        sm = plan([recipe, "cluster=sm_jobs", f"instance_type=ml.{instance}", "dry_run=true",
                   "cluster.sm_jobs_config.output_path=s3://bucket/jobs",
                   f"base_results_dir={tmp_path / 'sm'}"])  # fmt: skip
        assert wanted <= set(dict(sm.spec.env))
        assert sm.request.payload["environment"] == dict(sm.spec.env)
