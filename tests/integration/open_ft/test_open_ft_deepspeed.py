"""The DeepSpeed recipes run on the open entry: their generated ds_config.json parses through
DeepSpeed's own config class, and under ZeRO-3 the model loads partitioned over the ranks
(2 gloo processes on CPU, where DeepSpeed's engine itself cannot start)."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests import tiny_lm
from tests.conftest import REPO, require, run_launcher

PROBE = REPO / "tests" / "fixtures" / "scripts" / "zero3_load_probe.py"
ZERO3 = "fine-tuning/deepspeed/hf_llama3_70b_seq4k_gpu_zero3_offload"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tiny_lm.TinyLM:
    for module in ("deepspeed", "trl", "transformers", "torch"):
        require(importlib.util.find_spec(module) is not None, f"{module} (the [train] extra)")
    return tiny_lm.build(tmp_path_factory.mktemp("tiny-lm"))


def test_zero3_loads_the_model_partitioned_over_two_ranks(
    tmp_path: Path, tiny: tiny_lm.TinyLM
) -> None:
    env = {"HPL_STATE_DIR": str(tmp_path / "state"), "XDG_CACHE_HOME": str(tmp_path / "c")}
    proc = run_launcher(
        f"recipes={ZERO3}",
        "cluster=local",
        "dry_run=true",
        f"base_results_dir={tmp_path}",
        "recipes.run.name=zero3",
        "recipes.trainer.num_nodes=1",
        "recipes.trainer.devices=2",
        "cpu_processes=2",  # no GPU here: the recipe's 2 processes run on the CPU
        "recipes.deepspeed.global_batch_size=4",
        f"recipes.model.hf_model_name_or_path={tiny.model}",
        "recipes.model.max_position_embeddings=256",
        "recipes.model.max_context_width=32",
        f"recipes.model.data.train_dir={tiny.text}",
        env=env,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    job = tmp_path / "zero3"
    assert "open_ft.py --config-path=" in (job / "train_script.sh").read_text()
    probe = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc-per-node=2",
            str(PROBE),
            str(job),
            "zero3_hydra.yaml",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, **tiny_lm.OFFLINE_ENV, "PYTHONPATH": str(REPO)},
        timeout=600,
        check=False,
    )
    assert probe.returncode == 0, (probe.stdout + probe.stderr)[-5000:]
    reports = [json.loads(m) for m in re.findall(r"zero3-probe (\{[^}]*\})", probe.stdout)]
    assert sorted(r["rank"] for r in reports) == [0, 1]
    for report in reports:
        assert report["zero3_enabled"] and report["zero_stage"] == 3
        assert report["offload_param"] and report["train_batch_size"] == 4
        assert report["local"] < report["full"]  # this rank holds its part only
        assert 2 * report["local"] >= report["full"]  # and the two parts cover the model
