"""Open fine-tuning recipes: the launch-time checks (one line, exit 2, nothing written) and the
entry's own handling of the recipe (outputs, resuming, overrides), without training."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hyperpod_launcher.examples import open_ft
from tests.conftest import run_launcher

SFT = "recipes=fine-tuning/hf/open_causal_lm_gpu_sft"
LORA = "recipes=fine-tuning/hf/open_causal_lm_gpu_sft_lora"
QLORA = "recipes=fine-tuning/hf/open_causal_lm_gpu_sft_qlora"
GRPO = "recipes=fine-tuning/hf/open_causal_lm_gpu_grpo_lora"
COMPLETE = (
    "recipes.model.hf_model_name_or_path=/fsx/models/base",
    "recipes.model.data.train_dir=/fsx/data",
)


@pytest.mark.parametrize(
    ("recipe", "overrides", "expected"),
    [
        (
            SFT,
            ("+recipes.model.peft.rank=8",),
            "error: recipes.model.peft.rank=8: PEFT keys need recipes.model.peft.peft_type=lora "
            "or qlora (this recipe trains full weights)",
        ),
        (
            LORA,
            ("recipes.model.peft.peft_type=lora4",),
            "error: recipes.model.peft.peft_type: expected one of 'lora', 'qlora' or null, got "
            "'lora4' (did you mean 'lora' or 'qlora'?)",
        ),
        (
            LORA,
            ("+recipes.method.dpo.beta=0.1",),
            "error: recipes.method.dpo: dpo settings do not fit recipes.method.name=sft; "
            "remove them",
        ),
        (
            QLORA,
            (
                "instance_type=ml.c5.2xlarge",
                "cluster=sm_jobs",
                "cluster.sm_jobs_config.output_path=s3://bucket/out",
            ),
            "error: instance_type=ml.c5.2xlarge: QLoRA (recipes.model.peft.peft_type=qlora) "
            "needs CUDA GPUs; use a GPU instance or recipes.model.peft.peft_type=lora",
        ),
        (
            QLORA,
            ("recipes.model.strategy=fsdp", "cluster=slurm"),
            "error: recipes.model.strategy=fsdp: QLoRA runs with ddp (one 4-bit base per GPU)",
        ),
        (
            GRPO,
            ("recipes.method.grpo.num_generations=3",),
            "error: recipes.method.grpo.num_generations=3: must be at least 2 and divide the "
            "generation batch 64 (micro batch 1 x accumulation 8 x 8 processes)",
        ),
        (
            SFT,
            ("recipes.model.data.train_dir=null",),
            "error: recipes.model.data.train_dir=null: name a .json/.jsonl/.parquet file or a "
            "folder of them (or recipes.model.data.train_channel on SageMaker)",
        ),
    ],
)
def test_bad_open_recipe_is_one_line_and_writes_nothing(
    tmp_path: Path, recipe: str, overrides: tuple[str, ...], expected: str
) -> None:
    proc = run_launcher(
        recipe,
        *COMPLETE,
        f"base_results_dir={tmp_path / 'results'}",
        "dry_run=true",
        *overrides,
        env={"HPL_STATE_DIR": str(tmp_path / "state"), "XDG_CACHE_HOME": str(tmp_path / "c")},
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.strip() == expected
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "results").exists()


def test_qlora_on_local_without_a_gpu_is_refused(tmp_path: Path) -> None:
    proc = run_launcher(
        QLORA,
        *COMPLETE,
        "cluster=local",
        "recipes.trainer.devices=1",
        f"base_results_dir={tmp_path / 'results'}",
        env={
            "HPL_STATE_DIR": str(tmp_path / "state"),
            "XDG_CACHE_HOME": str(tmp_path / "c"),
            "CUDA_VISIBLE_DEVICES": "",  # no GPU, whatever this machine has
        },
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.strip() == (
        "error: recipes.model.peft.peft_type=qlora: QLoRA needs a CUDA GPU and this machine has "
        "none; use recipes.model.peft.peft_type=lora"
    )
    assert not (tmp_path / "results").exists()


def test_outputs_go_to_a_folder_of_the_run() -> None:
    recipe: dict = {"run": {"name": "sft-a"}, "exp_manager": {"exp_dir": None}}
    assert open_ft.output_dir(recipe, "/jobs/sft-a") == "/jobs/sft-a/checkpoints"
    recipe["exp_manager"]["exp_dir"] = "/fsx/exp"  # shared by recipes: one folder each
    assert open_ft.output_dir(recipe, "/jobs/sft-a") == "/fsx/exp/sft-a/checkpoints"
    recipe["exp_manager"]["checkpoint_dir"] = "/fsx/ckpt/"
    assert open_ft.output_dir(recipe, "/jobs/sft-a") == "/fsx/ckpt"


def test_resume_override_from_the_per_node_script_is_understood(tmp_path: Path) -> None:
    out = tmp_path / "checkpoints"
    recipe: dict = {"exp_manager": {"resume_from_checkpoint": None}}
    for step in (2, 10, 4):  # numeric order, not by name or time
        (out / f"checkpoint-{step}").mkdir(parents=True)
        (out / f"checkpoint-{step}" / "trainer_state.json").write_text("{}")
        open_ft.write_identity(str(out / f"checkpoint-{step}"), recipe)
    (out / "checkpoint-12").mkdir()  # being written: no trainer state yet
    assert open_ft.resume_point(recipe, str(out)) == str(out / "checkpoint-10")

    open_ft.apply_overrides(recipe, [f"exp_manager.resume_from_checkpoint={out}/checkpoint-4"])
    assert open_ft.resume_point(recipe, str(out)) == str(out / "checkpoint-4")
    open_ft.apply_overrides(recipe, [f"++exp_manager.resume_from_checkpoint={out}"])
    assert open_ft.resume_point(recipe, str(out)) == str(out / "checkpoint-10")
    with pytest.raises(open_ft.RecipeError, match="expected key=value"):
        open_ft.apply_overrides(recipe, ["--resume"])


def test_resume_only_into_the_same_run(tmp_path: Path) -> None:
    out = tmp_path / "checkpoints"
    recipe: dict = {
        "run": {"name": "a", "results_dir": "/r/a"},
        "trainer": {"max_steps": 10, "devices": 8, "seed": 1},
        "exp_manager": {"resume_from_checkpoint": None, "save_every_n_steps": 5},
        "model": {"optim": {"lr": 2e-5}, "data": {"train_dir": "/d1"}, "hf_access_token": "t"},
    }
    (out / "checkpoint-5").mkdir(parents=True)
    (out / "checkpoint-5" / "trainer_state.json").write_text("{}")
    assert open_ft.resume_point(recipe, str(tmp_path / "empty")) is None  # fresh: nothing there
    with pytest.raises(open_ft.RecipeError, match=r"has no run_identity\.json"):
        open_ft.resume_point(recipe, str(out))  # a checkpoint of unknown origin is not resumed
    open_ft.write_identity(str(out / "checkpoint-5"), recipe)
    assert open_ft.resume_point(recipe, str(out)) == str(out / "checkpoint-5")
    # Keys that do not change what is trained keep the run: more steps, GPUs, save cadence.
    open_ft.apply_overrides(
        recipe, ["trainer.max_steps=20", "trainer.devices=16", "exp_manager.save_every_n_steps=2"]
    )
    assert open_ft.resume_point(recipe, str(out)) == str(out / "checkpoint-5")
    assert "t" not in (out / "checkpoint-5" / "run_identity.json").read_text().split('"')
    for change in ("model.optim.lr=1e-4", "model.data.train_dir=/d2"):
        other = json.loads(json.dumps(recipe))
        open_ft.apply_overrides(other, [change])
        with pytest.raises(open_ft.RecipeError, match="belongs to another run") as err:
            open_ft.resume_point(other, str(out))
        assert change.split("=")[0] in str(err.value) and "refusing to resume" in str(err.value)


def test_math_and_reasoning_rewards_score_real_completions() -> None:
    completions = [
        "Add them.\nThe answer is \\boxed{1,000}.",  # newline, commas: still right
        "Steps...\n#### 12",
        "I think \\boxed{\\frac{1}{2}} is it",
        "no final answer",
        [{"role": "assistant", "content": "so \\boxed{7}"}],
    ]
    answers = ["1000", "#### 12", "\\frac{1}{2}", "1000", "8"]
    assert open_ft.math_answer_reward(completions, answer=answers) == [1.0, 1.0, 1.0, 0.0, 0.0]
    assert open_ft.format_reward(["line one\nline two", " \n"]) == [1.0, 0.0]
    thoughts = [
        "<think>\n3 + 4 = 7\n</think>\n\\boxed{7}",
        "3 + 4 = 7</think> 7",  # the template opened the block in the prompt
        "<think>never closed",
        "<think>a</think><think>b</think> 7",
        "<think>a</think>",  # no answer after it
    ]
    assert open_ft.think_format_reward(thoughts) == [1.0, 1.0, 0.0, 0.0, 0.0]
    with pytest.raises(open_ft.RecipeError, match="needs an `answer` column"):
        open_ft.math_answer_reward(["x"])


def test_built_in_rewards_and_dotted_paths() -> None:
    completions = ["red box", " ", [{"role": "assistant", "content": "red box "}]]
    assert open_ft.format_reward(completions) == [1.0, 0.0, 1.0]
    answers = ["red box", "x", "red box"]
    assert open_ft.exact_match_reward(completions, answer=answers) == [1.0, 0.0, 1.0]
    assert open_ft.reward_function("os.path:basename") is __import__("os").path.basename
    with pytest.raises(open_ft.RecipeError, match="neither a built-in"):
        open_ft.reward_function("nope")


def test_deepspeed_schedule_is_the_recipes() -> None:
    from hyperpod_launcher.stacks import deepspeed_config as ds_config

    def schedule(name: str) -> dict | None:
        recipe = {
            "deepspeed": {"zero_stage": 2, "micro_batch_size": 1, "global_batch_size": 8},
            "trainer": {"max_steps": 100},
            "model": {"optim": {"lr": 1e-4, "scheduler": name, "warmup_steps": 10}},
        }
        return ds_config.build(recipe, 8).get("scheduler")

    cosine = schedule("cosine")
    assert cosine is not None and cosine["type"] == "WarmupCosineLR"
    assert cosine["params"]["total_num_steps"] == 100
    assert cosine["params"]["warmup_num_steps"] == 10
    assert schedule("linear")["type"] == "WarmupDecayLR"  # type: ignore[index]
    assert schedule("constant_with_warmup")["type"] == "WarmupLR"  # type: ignore[index]
    assert schedule("inverse_sqrt") is None  # then the Trainer's own scheduler of that name
    args = open_ft.trainer_arguments(
        {"model": {"optim": {"scheduler": "inverse_sqrt"}}},
        "sft",
        "/out",
        {
            "train_micro_batch_size_per_gpu": 1,
            "gradient_accumulation_steps": 1,
            "bf16": {"enabled": False},
            "fp16": {"enabled": False},
        },
    )
    assert args["lr_scheduler_type"] == "inverse_sqrt"


def test_fsdp_loads_on_rank_zero_and_grpo_uses_vllm_when_installed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    args = open_ft.trainer_arguments({"model": {"strategy": "fsdp"}}, "sft", "/out", None)
    assert args["fsdp_config"]["cpu_ram_efficient_loading"] is True
    assert args["fsdp_config"]["sync_module_states"] is True
    assert args["optim"] == "adamw_torch"  # the entry's fallback; recipes default to fused
    assert "use_vllm" not in open_ft.method_arguments({}, "grpo")  # no vLLM here
    monkeypatch.setattr(open_ft, "vllm_available", lambda: True)
    grpo = open_ft.method_arguments({}, "grpo")
    assert grpo["use_vllm"] and grpo["vllm_mode"] == "colocate"


def test_final_model_goes_where_sagemaker_uploads_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SM_MODEL_DIR", raising=False)
    assert open_ft.final_dir("/fsx/exp/run/checkpoints") == "/fsx/exp/run/checkpoints/final"
    monkeypatch.setenv("SM_MODEL_DIR", "/opt/ml/model")
    assert open_ft.final_dir("/opt/ml/checkpoints") == "/opt/ml/model"


def test_stack_check_names_what_the_jobs_python_lacks() -> None:
    import sys

    from hyperpod_launcher.stacks import train_stack

    assert train_stack.missing_modules(sys.executable, ("json", "no_such_module_x")) == [
        "no_such_module_x"
    ]
    deepspeed = {"run": {"model_type": "open_ft"}, "model": {"strategy": "deepspeed"}}
    assert "deepspeed" in train_stack.modules(deepspeed)
    assert "deepspeed" not in train_stack.modules({"model": {"strategy": "ddp"}})


def test_preflight_finds_the_stack_with_the_python_behind_torchrun(tmp_path: Path) -> None:
    import os
    import sys

    (tmp_path / "model").mkdir()
    (tmp_path / "data").mkdir()
    argv = (
        "preflight",
        SFT,
        f"recipes.model.hf_model_name_or_path={tmp_path / 'model'}",
        f"recipes.model.data.train_dir={tmp_path / 'data'}",
        "cluster=local",
        "recipes.trainer.devices=1",
        f"base_results_dir={tmp_path / 'results'}",
    )
    env = {"HPL_STATE_DIR": str(tmp_path / "state"), "XDG_CACHE_HOME": str(tmp_path / "c")}
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    torchrun = bin_dir / "torchrun"
    torchrun.write_text(f"#!{sys.executable}\n")
    torchrun.chmod(0o755)
    path = f"{bin_dir}{os.pathsep}{os.environ['PATH']}"
    good = run_launcher(*argv, env={**env, "PATH": path})
    assert good.returncode == 0, good.stdout + good.stderr
    assert f"ok   open fine-tuning stack: {sys.executable} has torch, transformers" in good.stdout
    # A Python without the stack (this one finds nothing it is asked for).
    bare = bin_dir / "bare-python"
    bare.write_text('#!/bin/sh\nshift 2\nfor name in "$@"; do echo "$name"; done\n')
    bare.chmod(0o755)
    torchrun.write_text(f"#!{bare}\n")
    missing = run_launcher(*argv, env={**env, "PATH": path})
    assert missing.returncode == 1, missing.stdout + missing.stderr
    assert (
        f"fail open fine-tuning stack: {bare} lacks torch, transformers, trl, peft, "
        "datasets, accelerate; fix: install the [train] extra into that Python"
    ) in missing.stdout
    assert not (tmp_path / "results").exists()
