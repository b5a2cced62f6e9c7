"""Watching local runs: a tiny open SFT shows its progress in status, status --json, jobs and
at its end; a stalled entry trips the hang watchdog (stacks written, distinct exit code,
restart taken); NCCL falling back to sockets on an EFA job fails it when EFA is required."""

from __future__ import annotations

import importlib.util
import json
import re
import time
from pathlib import Path

import pytest

from hyperpod_launcher.telemetry.node_watch import HANG_EXIT, NO_EFA_EXIT
from tests import tiny_lm
from tests.conftest import REPO, require, run_cli, run_launcher

SCRIPTS = REPO / "tests" / "fixtures" / "scripts"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    require(importlib.util.find_spec("torch") is not None, "torch (torchrun)")
    return {"HPL_STATE_DIR": str(tmp_path / "state")}


def test_tiny_open_sft_shows_every_figure(env: dict[str, str], tmp_path: Path) -> None:
    for module in ("trl", "peft", "transformers", "datasets"):
        require(importlib.util.find_spec(module) is not None, f"{module} (the [train] extra)")
    tiny = tiny_lm.build(tmp_path / "tiny-lm")
    env = {**env, **tiny_lm.OFFLINE_ENV, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    proc = run_launcher(
        "recipes=fine-tuning/hf/open_causal_lm_gpu_sft",
        "cluster=local",
        f"base_results_dir={tmp_path / 'results'}",
        "recipes.run.name=tiny",
        "recipes.trainer.devices=2",
        "cpu_processes=2",  # no GPU here: the recipe's 2 processes run on the CPU
        f"recipes.model.hf_model_name_or_path={tiny.model}",
        f"recipes.model.data.train_dir={tiny.text}",
        "recipes.model.max_context_width=32",
        "recipes.model.micro_batch_size=4",
        "recipes.model.gradient_checkpointing=false",
        "recipes.trainer.log_every_n_steps=2",
        "recipes.trainer.max_steps=6",
        "recipes.exp_manager.save_every_n_steps=0",
        env=env,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    assert re.search(r"summary: time to first step \S+ .*mean [\d.]+k? tok/s/GPU", output)
    job = tmp_path / "results" / "tiny"
    lines = [json.loads(x) for x in next(job.glob("hpl-metrics-*.jsonl")).read_text().splitlines()]
    step_lines = [x for x in lines if x["event"] == "step"]
    assert [x["step"] for x in step_lines] == [2, 4, 6]
    # Tokens are the Trainer's count summed over both ranks, printed once (by rank 0).
    seen = json.loads((job / "checkpoints" / "trainer_state.json").read_text())
    assert sum(x["tokens"] for x in step_lines) == seen["num_input_tokens_seen"] > 0
    assert all(x["samples"] == 2 * 4 * 2 for x in step_lines)  # 2 steps x 4 x 2 ranks
    assert output.count('hpl-metrics {"event":"step"') == 3  # rank 0 only

    data = json.loads(run_cli("status", "tiny", "--json", env=env).stdout)
    figures = data["progress"]
    assert (figures["step"], figures["max_steps"], figures["percent"]) == (6, 6, 100.0)
    assert figures["tokens"] == seen["num_input_tokens_seen"]
    assert figures["tokens_per_s_per_accelerator"] > 0 and figures["accelerators"] == 2
    assert figures["eta_s"] == 0 and figures["attempts"] == 1
    assert 0 < figures["goodput"] <= 1 and figures["time_to_first_step_s"] > 0
    assert figures["loss"] > 0 and figures["lr"] > 0
    assert figures["mfu"] is None  # no accelerator peak for a CPU run
    text = run_cli("status", "tiny", env=env).stdout
    assert re.search(r"progress: step 6/6 \(100 %\), loss [\d.]+, [\d.]+k? tok/s/GPU", text)
    assert "summary: time to first step" in text
    listing = run_cli("jobs", env=env).stdout
    assert "PROGRESS" in listing and "step 6/6" not in listing  # shown while it runs


def test_stalled_job_trips_the_watchdog_and_restarts(env: dict[str, str], tmp_path: Path) -> None:
    proc = run_launcher(
        f"base_results_dir={tmp_path / 'results'}",
        f"training_cfg.entry_script={SCRIPTS / 'stall.py'}",
        "training_cfg.run.name=stall",
        "+env_vars.HPL_HANG_TIMEOUT=3",
        "max_restarts=1",
        "wait=false",
        env=env,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    listed = ""
    for _ in range(600):  # while it runs, `jobs` shows the step it reached
        listed = run_cli("jobs", env=env).stdout
        if "step 2/10 (20 %)" in listed or "running" not in listed:
            break
        time.sleep(0.1)
    assert "step 2/10 (20 %)" in listed, listed
    run_cli("logs", "stall", "--follow", env=env)  # returns when the job ends
    job = tmp_path / "results" / "stall"
    output = next(job.glob("log-*.out")).read_text()
    assert output.count("no training step for 3 s") == 2, output[-4000:]
    assert f"attempt 1 failed with exit status {HANG_EXIT}; restarting" in output
    assert "rank 0 attempt 1 waiting" in output  # the restart ran
    stacks = sorted(job.glob("stacks-*-attempt*.txt"))
    assert len(stacks) == 2, output[-4000:]
    for path in stacks:
        text = path.read_text()
        assert "wait_for_a_collective_that_never_comes" in text, text
        assert "Most recent call first" in text or "Current thread" in text or "Thread 0x" in text
    data = json.loads(run_cli("status", "stall", "--json", env=env).stdout)
    assert data["state"] == "failed" and data["exit_code"] == HANG_EXIT
    assert data["progress"]["attempts"] == 2 and data["progress"]["hang"]["window_s"] == 3
    assert data["causes"][0].startswith("hang: no training step for 3s")
    assert "hang: no training step" in run_cli("status", "stall", env=env).stdout


def test_sockets_on_an_efa_job_fail_the_attempt_when_efa_is_required(
    env: dict[str, str], tmp_path: Path
) -> None:
    proc = run_launcher(
        f"base_results_dir={tmp_path / 'results'}",
        f"training_cfg.entry_script={SCRIPTS / 'nccl_sockets.py'}",
        "training_cfg.run.name=sockets",
        "+env_vars.FI_PROVIDER=efa",
        "+env_vars.HPL_REQUIRE_EFA=1",
        env=env,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == NO_EFA_EXIT, output[-4000:]
    assert output.count("chose TCP sockets, not EFA") == 1
    data = json.loads(run_cli("status", "sockets", "--json", env=env).stdout)
    assert data["progress"]["network"]["network"] == "Socket"
    assert data["causes"] == [
        "network: NCCL chose TCP sockets instead of EFA on " + data["progress"]["network"]["host"]
    ]


def test_one_stuck_rank_trips_the_watchdog_with_every_ranks_stack(
    env: dict[str, str], tmp_path: Path
) -> None:
    """Rank 1 stops stepping; rank 0 waits for it in an all-reduce. The stacks file holds both
    ranks' Python stacks (each line carries torchrun's rank prefix)."""
    proc = run_launcher(
        f"base_results_dir={tmp_path / 'results'}",
        f"training_cfg.entry_script={SCRIPTS / 'stall_one_rank.py'}",
        "training_cfg.run.name=stuck-rank",
        "training_cfg.run.ntasks_per_node=2",
        "+env_vars.HPL_HANG_TIMEOUT=2",
        env=env,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == HANG_EXIT, output[-4000:]
    assert "rank 1 attempt 0 stops stepping at step 3" in output
    job = tmp_path / "results" / "stuck-rank"
    (stacks,) = job.glob("stacks-*-attempt0-*.txt")
    text = stacks.read_text()
    assert re.search(r"^\[rank1\]:.* in stop_stepping_on_this_rank$", text, re.M), text
    assert re.search(r"^\[rank0\]:.* in all_reduce$", text, re.M), text
    assert re.search(r"^\[rank0\]:.* in step_together$", text, re.M), text
    data = json.loads(run_cli("status", "stuck-rank", "--json", env=env).stdout)
    assert data["exit_code"] == HANG_EXIT and data["progress"]["step"] == 2
    assert data["progress"]["hang"]["stacks"] == str(stacks)
