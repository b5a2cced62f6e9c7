"""Restarts resume per stack: the per-node script's selection runs for real in bash on fixture
trees of checkpoints laid out as each stack writes them, and what reaches the entry is checked."""

from __future__ import annotations

import os
from pathlib import Path

from hyperpod_launcher import stacks
from hyperpod_launcher.launch.compose import plan
from tests.unit import node_script

ADAPTER = (
    "recipes=training/llama/hf_llama3_8b_seq8k_gpu_p5x16_pretrain",
    "instance_type=p5.48xlarge",
)
LORA = (
    "recipes=fine-tuning/llama/hf_llama3_8b_seq8k_gpu_lora",
    "instance_type=p5.48xlarge",
    "recipes.model.hf_model_name_or_path=/models/llama",
)
NEURON = (
    "recipes=training/llama/hf_llama3_8b_seq8k_trn1x4_pretrain",
    "instance_type=trn1.32xlarge",
)
NEMO = ("recipes=training/llama/megatron_llama3_1_8b_nemo", "instance_type=p5.48xlarge")
DEEPSPEED = (
    "recipes=fine-tuning/deepspeed/hf_llama3_8b_seq8k_gpu_zero2",
    "instance_type=p5.48xlarge",
)


def tree(root: Path, entries: dict[str, int]) -> None:
    """Make `path: mtime` entries; a path ending in '/' is a folder, else a file."""
    for rel in entries:
        path = root / rel
        if rel.endswith("/"):
            path.mkdir(parents=True, exist_ok=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("x")
    for rel, mtime in sorted(entries.items(), key=lambda item: -item[0].count("/")):
        os.utime(root / rel, (mtime, mtime))


def resumed_with(tmp_path: Path, *overrides: str, restart: int = 1) -> tuple[list[str], str]:
    """The arguments the entry got after the recipe's own, and the script's output."""
    the_plan = plan(["cluster=slurm", f"base_results_dir={tmp_path / 'results'}", *overrides])
    Path(the_plan.spec.workdir).mkdir(parents=True)
    proc, calls = node_script.run(
        the_plan.request.files["train_script.sh"].text, tmp_path, restart_count=restart
    )
    assert proc.returncode == 0, proc.stderr
    (call,) = calls
    argv = call["argv"]
    assert isinstance(argv, list)
    config_name = next(i for i, a in enumerate(argv) if a.startswith("--config-name="))
    return argv[config_name + 1 :], proc.stdout


def test_every_stack_that_runs_our_entry_has_a_rule() -> None:
    """A stack without one runs no code of ours (its own job) or no recipe (custom scripts)."""
    for name in stacks.names():
        stack = stacks.get(name)
        assert (stack.resume is None) == (stack.own_job is not None or name == stacks.SCRIPT)


def test_adapter_passes_the_newest_complete_sharded_step(tmp_path: Path) -> None:
    ckpt = tmp_path / "ckpt"
    tree(
        ckpt,
        {
            "sharded/step_9/tp0_ep0/": 400,
            "sharded/step_10/tp0_ep0/": 300,  # newer by number, not by time or by name
            "sharded/step_20/tp0_ep0/": 100,
            "sharded/step_20/tp1_ep0/": 100,
            "sharded/step_30/": 500,  # no tp*_ep* shards yet: being written
            "full/steps_40/": 600,  # weights only: never a resume source
            "local/0/tp0_ep0_fsdp0/": 700,
        },
    )
    args, out = resumed_with(tmp_path, *ADAPTER, f"recipes.exp_manager.checkpoint_dir={ckpt}/")
    assert args == [f"exp_manager.resume_from_checkpoint={ckpt}/sharded/step_20"]
    assert f"attempt 1: resuming from {ckpt}/sharded/step_20" in out


def test_adapter_checkpoint_dir_defaults_under_exp_dir(tmp_path: Path) -> None:
    exp = tmp_path / "exp"
    tree(exp, {"checkpoints/sharded/step_5/tp0_ep0/": 1})
    args, _ = resumed_with(
        tmp_path,
        *ADAPTER,
        f"recipes.exp_manager.exp_dir={exp}",
        "recipes.exp_manager.checkpoint_dir=null",
    )
    assert args == [f"exp_manager.resume_from_checkpoint={exp}/checkpoints/sharded/step_5"]


def test_a_rerun_with_restart_count_0_resumes_too(tmp_path: Path) -> None:
    # HyperPod's auto-resume re-runs the step in the same job: SLURM_RESTART_COUNT stays 0.
    ckpt = tmp_path / "ckpt"
    tree(ckpt, {"sharded/step_20/tp0_ep0/": 1})
    args, out = resumed_with(
        tmp_path, *ADAPTER, f"recipes.exp_manager.checkpoint_dir={ckpt}", restart=0
    )
    assert args == [f"exp_manager.resume_from_checkpoint={ckpt}/sharded/step_20"]
    assert f"attempt 0: resuming from {ckpt}/sharded/step_20" in out


def test_first_attempt_without_checkpoints_starts_fresh_and_says_why(tmp_path: Path) -> None:
    ckpt = tmp_path / "ckpt"
    args, out = resumed_with(
        tmp_path, *ADAPTER, f"recipes.exp_manager.checkpoint_dir={ckpt}", restart=0
    )
    assert args == []
    assert f"attempt 0: starting fresh: {ckpt}/sharded does not exist yet" in out


def test_no_complete_checkpoint_starts_over(tmp_path: Path) -> None:
    ckpt = tmp_path / "ckpt"
    tree(ckpt, {"sharded/step_20/": 1, "full/steps_20/": 1})
    args, out = resumed_with(tmp_path, *ADAPTER, f"recipes.exp_manager.checkpoint_dir={ckpt}")
    assert args == []
    assert f"attempt 1: starting fresh: no complete checkpoint in {ckpt}/sharded" in out


def test_adapter_peft_resumes_from_peft_sharded(tmp_path: Path) -> None:
    ckpt = tmp_path / "ckpt"
    tree(ckpt, {"peft_sharded/step_5/tp0_ep0/": 1, "sharded/step_50/tp0_ep0/": 2})
    args, _ = resumed_with(tmp_path, *LORA, f"recipes.exp_manager.checkpoint_dir={ckpt}")
    assert args == [f"exp_manager.resume_from_checkpoint={ckpt}/peft_sharded/step_5"]


def test_adapter_local_checkpoints_reload_themselves(tmp_path: Path) -> None:
    # A resume path would turn the adapter's own reload of local/ off.
    ckpt = tmp_path / "ckpt"
    tree(ckpt, {"local/0/tp0_ep0_fsdp0/": 1, "sharded/step_5/tp0_ep0/": 2})
    args, _ = resumed_with(
        tmp_path,
        *ADAPTER,
        f"recipes.exp_manager.checkpoint_dir={ckpt}",
        "recipes.exp_manager.auto_checkpoint.enabled=true",
    )
    assert args == []


def test_neuron_and_nemo_resume_themselves_when_resume_if_exists(tmp_path: Path) -> None:
    for recipe in (NEURON, NEMO):
        exp = tmp_path / recipe[0].rsplit("/", 1)[-1]
        tree(exp, {"hf_llama/checkpoints/a/": 1, "megatron_llama/checkpoints/a.ckpt": 1})
        args, _ = resumed_with(
            exp,
            *recipe,
            f"recipes.exp_manager.exp_dir={exp}",
            "recipes.exp_manager.resume_if_exists=true",
        )
        assert args == []


def test_neuron_passes_the_newest_finished_checkpoint_of_its_log_dir(tmp_path: Path) -> None:
    exp = tmp_path / "exp"
    tree(
        exp,
        {
            "hf_llama/checkpoints/hf_llama--step=200-consumed_samples=800.0/": 100,
            "hf_llama/checkpoints/hf_llama--step=400-consumed_samples=1600.0/": 200,
            "hf_llama/checkpoints/hf_llama--step=600-consumed_samples=2400.0/": 300,
            "hf_llama/checkpoints/hf_llama--step=600-consumed_samples=2400.0-unfinished": 300,
        },
    )
    args, _ = resumed_with(
        tmp_path,
        *NEURON,
        f"recipes.exp_manager.exp_dir={exp}",
        "recipes.exp_manager.resume_if_exists=false",
    )
    newest = exp / "hf_llama/checkpoints/hf_llama--step=400-consumed_samples=1600.0"
    assert args == [f"exp_manager.resume_from_checkpoint={newest}"]


def test_nemo_explicit_log_dir_is_where_checkpoints_are(tmp_path: Path) -> None:
    log = tmp_path / "log"
    tree(log, {"checkpoints/megatron_llama--step=9.ckpt": 200, "checkpoints/old.ckpt": 100})
    args, _ = resumed_with(
        tmp_path,
        *NEMO,
        f"recipes.exp_manager.explicit_log_dir={log}",
        "recipes.exp_manager.resume_if_exists=false",
    )
    assert args == [
        f"exp_manager.resume_from_checkpoint={log}/checkpoints/megatron_llama--step=9.ckpt"
    ]


def test_deepspeed_entry_resumes_itself(tmp_path: Path) -> None:
    ckpt = tmp_path / "ckpt"
    tree(ckpt, {"step500/": 1, "latest": 1, "../train.jsonl": 1})
    args, _ = resumed_with(
        tmp_path,
        *DEEPSPEED,
        f"recipes.model.data.train_dir={tmp_path / 'train.jsonl'}",
        f"recipes.exp_manager.checkpoint_dir={ckpt}",
        "recipes.model.hf_model_name_or_path=/models/llama",
    )
    assert args == []


def test_custom_scripts_get_nothing(tmp_path: Path) -> None:
    the_plan = plan(["cluster=slurm", f"base_results_dir={tmp_path}"])
    assert the_plan.spec.resume is None
    assert "resume" not in the_plan.request.files["train_script.sh"].text
