"""Watching a 2-node run on the real Slurm testbed: a tiny open SFT followed with --wait shows
progress lines and a summary; status reads the job folder's metrics file."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest

from tests import tiny_lm
from tests.conftest import require, run_cli, run_launcher

pytestmark = pytest.mark.slurm


def test_open_sft_on_two_nodes_shows_progress(tmp_path: Path, slurm_cluster: None) -> None:
    for module in ("trl", "peft", "transformers", "datasets"):
        require(importlib.util.find_spec(module) is not None, f"{module} (the [train] extra)")
    tiny = tiny_lm.build(tmp_path / "tiny")
    env = {"HPL_STATE_DIR": str(tmp_path / "state"), "XDG_CACHE_HOME": str(tmp_path / "c")}
    proc = run_launcher(
        "recipes=fine-tuning/hf/open_causal_lm_gpu_sft_lora",
        "cluster=slurm",
        "cluster.exclusive=false",
        "recipes.run.instance_type=null",  # the testbed has CPUs only
        f"base_results_dir={tmp_path / 'results'}",
        "recipes.run.name=watch-2x2",
        "recipes.trainer.num_nodes=2",
        "recipes.trainer.devices=2",
        f"recipes.model.hf_model_name_or_path={tiny.model}",
        f"recipes.model.data.train_dir={tiny.text}",
        "recipes.model.max_context_width=32",
        "recipes.model.micro_batch_size=4",
        "recipes.model.gradient_checkpointing=false",
        "recipes.trainer.max_steps=4",
        "recipes.trainer.log_every_n_steps=1",
        "recipes.exp_manager.save_every_n_steps=0",
        *(f"++env_vars.{k}={v}" for k, v in tiny_lm.OFFLINE_ENV.items()),
        "--wait",
        env=env,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    # --wait without a terminal: one plain progress line per logging step, then the summary.
    shown = re.findall(r"^progress: step (\d+)/4 \(\d+ %\)", proc.stderr, re.MULTILINE)
    assert shown == ["1", "2", "3", "4"], proc.stderr[-4000:]
    assert re.search(r"^summary: time to first step \S+ \(queue ", proc.stderr, re.MULTILINE)
    job = tmp_path / "results" / "watch-2x2"
    (metrics,) = job.glob("hpl-metrics-*.jsonl")
    records = [json.loads(line) for line in metrics.read_text().splitlines()]
    steps = [r for r in records if r["event"] == "step"]
    assert [r["step"] for r in steps] == [1, 2, 3, 4]  # once, though two nodes watch
    assert sorted(r["host"] for r in records if r["event"] == "attempt") == ["node1", "node2"]
    seen = json.loads((job / "checkpoints" / "trainer_state.json").read_text())
    assert sum(r["tokens"] for r in steps) == seen["num_input_tokens_seen"] > 0
    assert all(r["samples"] == 4 * 4 for r in steps)  # 4 ranks x 4 rows a step

    figures = json.loads(run_cli("status", "watch-2x2", "--json", env=env).stdout)["progress"]
    assert (figures["step"], figures["percent"], figures["attempts"]) == (4, 100.0, 1)
    assert figures["accelerators"] == 4 and figures["tokens_per_s_per_accelerator"] > 0
    assert figures["time_to_first_step_s"] >= figures["startup_s"] > 0
    assert figures["queue_wait_s"] >= 0 and 0 < figures["goodput"] <= 1
