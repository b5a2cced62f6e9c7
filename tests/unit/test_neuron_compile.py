"""run.compile=1: the per-node script's compile pass differs from the training pass exactly in
COMPILE=1, its rendezvous id and its port (run for real in bash with recording launchers)."""

from __future__ import annotations

from pathlib import Path

from hyperpod_launcher.launch.compose import plan
from tests.unit import node_script

TRN = (
    "recipes=training/llama/hf_llama3_8b_seq8k_trn1x4_pretrain",
    "cluster=slurm",
    "instance_type=trn1.32xlarge",
)


def script(tmp_path: Path, *overrides: str) -> str:
    the_plan = plan([*TRN, f"base_results_dir={tmp_path}", *overrides])
    Path(the_plan.spec.workdir).mkdir(parents=True)
    return the_plan.request.files["train_script.sh"].text


def test_compile_pass_has_compile_1_and_its_own_rendezvous(tmp_path: Path) -> None:
    text = script(tmp_path, "recipes.run.compile=1")
    proc, calls = node_script.run(
        text, tmp_path, env_names=("COMPILE",), extra_env={"HPL_COMPILE_RDZV_PORT": "31234"}
    )
    assert proc.returncode == 0, proc.stderr
    wrapper, compile_pass, training = calls
    assert wrapper["tool"] == "neuron_parallel_compile" and wrapper["argv"][0] == "torchrun"
    assert [c["tool"] for c in (compile_pass, training)] == ["torchrun", "torchrun"]
    assert compile_pass["env"] == {"COMPILE": "1"}
    assert training["env"] == {"COMPILE": None}
    # Only the training pass keeps torchrun's per-rank copies (in the launch folder).
    trained = [a for a in training["argv"] if not a.startswith("--log-dir=")]
    differ = [(a, b) for a, b in zip(compile_pass["argv"], trained, strict=True) if a != b]
    assert sorted(differ) == [
        ("--rdzv-endpoint=127.0.0.1:31234", "--rdzv-endpoint=127.0.0.1:29400"),
        ("--rdzv-id=hpl-test-compile", "--rdzv-id=hpl-test"),
    ]


def test_compile_port_defaults_next_to_the_training_port(tmp_path: Path) -> None:
    proc, calls = node_script.run(script(tmp_path, "recipes.run.compile=1"), tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "--rdzv-endpoint=127.0.0.1:29401" in calls[1]["argv"]


def test_slurm_gives_the_compile_pass_a_port_range_of_its_own(tmp_path: Path) -> None:
    the_plan = plan([*TRN, f"base_results_dir={tmp_path}", "recipes.run.compile=1"])
    (batch,) = [t.text for n, t in the_plan.request.files.items() if n.endswith("_submission.sh")]
    assert 'export HPL_RDZV_PORT="$((20000 + SLURM_JOB_ID % 10000))"' in batch
    assert 'export HPL_COMPILE_RDZV_PORT="$((30000 + SLURM_JOB_ID % 10000))"' in batch


def test_without_compile_there_is_one_pass(tmp_path: Path) -> None:
    proc, calls = node_script.run(script(tmp_path), tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert [c["tool"] for c in calls] == ["torchrun"]
