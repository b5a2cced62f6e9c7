"""Open SFT with LoRA trains on the real 2-node Slurm testbed: 2 nodes x 2 gloo processes."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest
import testbed

from tests import tiny_lm
from tests.conftest import require, run_launcher

pytestmark = pytest.mark.slurm


def test_open_sft_lora_trains_on_two_nodes(tmp_path: Path, slurm_cluster: None) -> None:
    for module in ("trl", "peft", "transformers", "datasets"):
        require(importlib.util.find_spec(module) is not None, f"{module} (the [train] extra)")
    tiny = tiny_lm.build(tmp_path / "tiny")
    proc = run_launcher(
        "recipes=fine-tuning/hf/open_causal_lm_gpu_sft_lora",
        "cluster=slurm",
        "cluster.exclusive=false",
        "recipes.run.instance_type=null",  # the testbed has CPUs only
        f"base_results_dir={tmp_path / 'results'}",
        "recipes.run.name=open-sft-2x2",
        "recipes.trainer.num_nodes=2",
        "recipes.trainer.devices=2",
        f"recipes.model.hf_model_name_or_path={tiny.model}",
        f"recipes.model.data.train_dir={tiny.text}",
        "recipes.model.max_context_width=32",
        "recipes.model.micro_batch_size=4",
        "recipes.model.gradient_checkpointing=false",
        "recipes.model.optim.lr=3e-2",
        "recipes.trainer.max_steps=4",
        "recipes.trainer.log_every_n_steps=1",
        "recipes.exp_manager.save_every_n_steps=0",
        *(f"++env_vars.{k}={v}" for k, v in tiny_lm.OFFLINE_ENV.items()),
        env={"HPL_STATE_DIR": str(tmp_path / "state"), "XDG_CACHE_HOME": str(tmp_path / "c")},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    job_id = re.search(r"submitted slurm job (\d+)", proc.stdout).group(1)
    fields = testbed.wait_for_job(job_id, timeout=600)
    job = tmp_path / "results" / "open-sft-2x2"
    (log,) = job.glob(f"log-*_{job_id}.out")
    text = log.read_text()
    assert fields["JobState"] == "COMPLETED", text[-4000:]
    steps = [json.loads(b) for _, b in re.findall(r"open_ft step (\d+) (\{.*\})", text)]
    losses = [s["loss"] for s in steps if "loss" in s]
    assert len(losses) == 4 and losses[-1] < losses[0], losses
    assert steps[0]["epoch"] == pytest.approx(4 * 4 / 256, abs=1e-3)  # 4 ranks x 4 rows a step
    assert (job / "checkpoints" / "final" / "adapter_model.safetensors").is_file()
