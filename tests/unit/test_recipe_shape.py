"""MFU for the training adapter, NxD Training and NeMo: the launcher derives the model shape
and tokens per step from the recipe, the rendered per-node script hands them to the watcher,
and the step lines it makes from the stacks' progress lines carry them to `status`."""

from __future__ import annotations

import argparse
import io
import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from hyperpod_launcher.launch.compose import plan
from hyperpod_launcher.stacks.train_stack import recipe_of
from hyperpod_launcher.telemetry import figures as fig
from hyperpod_launcher.telemetry import node_watch
from hyperpod_launcher.telemetry.recipe_shape import mfu_inputs, params_without_input_embedding
from tests.conftest import REPO

FIXTURES = REPO / "tests" / "fixtures" / "telemetry"
ADAPTER_8B = "training/llama/hf_llama3_8b_seq8k_gpu_p5x16_pretrain"
NEMO_8B = "training/llama/megatron_llama3_1_8b_nemo"
NXD_8B = "training/llama/hf_llama3_8b_seq8k_trn1x4_pretrain"

# Llama 3 8B by hand: per layer q and o (4096 x 4096 each), k and v (4096 x 8 heads x 128),
# gate/up/down (3 x 4096 x 14336) and two norms; 32 layers, the final norm, then the LM head.
LAYER = 2 * 4096 * 4096 + 2 * 4096 * 1024 + 3 * 4096 * 14336 + 2 * 4096
LLAMA3_8B_BODY = 32 * LAYER + 4096  # 6.98e9
LM_HEAD = 4096 * 128256


def _inputs(recipe: str, tmp_path: Path) -> tuple[dict, str]:
    the_plan = plan((f"recipes={recipe}", "cluster=slurm", f"base_results_dir={tmp_path}"))
    spec = the_plan.spec
    script = the_plan.files["train_script.sh"][0]
    return mfu_inputs(recipe_of(spec.recipe_yaml), spec.nodes * spec.procs_per_node), script


def test_llama3_8b_adapter_recipe_matches_the_hand_count(tmp_path: Path) -> None:
    found, script = _inputs(ADAPTER_8B, tmp_path)
    assert round(LLAMA3_8B_BODY / 1e7) == 698  # ~6.98e9
    assert found["model"] == {
        "params": LLAMA3_8B_BODY + LM_HEAD, "layers": 32, "hidden": 4096, "seq": 8192
    }  # fmt: skip
    # 16 p5 nodes x 8 GPUs, tensor parallel 2: 64 data-parallel ranks x 2 samples x 8192 tokens.
    assert found["tokens_per_step"] == 64 * 2 * 8192
    assert "note" not in found
    # The per-node script hands exactly that to the watcher.
    (line,) = [line for line in script.splitlines() if line.startswith("  watch+=(--mfu-inputs ")]
    assert json.loads(shlex.split(line, comments=True)[1].rstrip(")")) == found


def test_nemo_recipe_without_a_vocabulary_leaves_the_lm_head_out_and_says_so(
    tmp_path: Path,
) -> None:
    found, _ = _inputs(NEMO_8B, tmp_path)
    assert found["model"]["params"] == LLAMA3_8B_BODY
    assert found["tokens_per_step"] == 2048 * 8192  # model.global_batch_size x sequence
    assert "model.vocab_size" in found["note"]


def test_nxd_recipe_without_the_mlp_shape_has_no_mfu_and_says_why(tmp_path: Path) -> None:
    found, script = _inputs(NXD_8B, tmp_path)
    assert found == {
        "note": "no MFU: the recipe states no model.intermediate_size, model.num_attention_heads"
    }
    assert "--mfu-inputs" in script


def test_open_and_unknown_recipes_get_nothing() -> None:
    assert mfu_inputs({"run": {"model_type": "open_ft"}, "model": {"hidden_size": 8}}, 8) == {}
    assert mfu_inputs({}, 8) == {}
    falcon = {"run": {"model_type": "hf"}, "model": {
        "model_type": "falcon", "num_hidden_layers": 2, "hidden_size": 64,
        "intermediate_size": 256, "num_attention_heads": 4, "max_context_width": 128,
        "train_batch_size": 1}}  # fmt: skip
    assert "'falcon' is unknown" in mfu_inputs(falcon, 8)["note"]


def test_mixture_of_experts_counts_the_routed_experts_only() -> None:
    shape = {"layers": 1, "hidden": 8, "intermediate": 16, "heads": 2, "kv_heads": 2,
             "vocab": None, "seq": 4}  # fmt: skip
    dense = params_without_input_embedding(shape, gated=True)
    moe = params_without_input_embedding(shape, gated=True, experts=8, experts_per_token=2)
    assert moe - dense == 3 * 8 * 16 + 8 * 8  # one more expert's MLP and the router


def test_watcher_step_lines_of_a_nemo_run_give_mfu(tmp_path: Path) -> None:
    inputs = {"model": {"params": 1_000_000, "layers": 2, "hidden": 64, "seq": 128},
              "tokens_per_step": 4096}  # fmt: skip
    log = FIXTURES / "nemo2_progress_printer.log"
    done = subprocess.run(
        [sys.executable, node_watch.__file__, "--job-dir", str(tmp_path), "--launch-id", "L1",
         "--mfu-inputs", json.dumps(inputs), "--", "cat", str(log)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in (tmp_path / "hpl-metrics-L1.jsonl").open()]
    steps = [r for r in records if r.get("event") == "step"]
    assert steps and all(r["model"] == inputs["model"] for r in steps)
    assert all(r["tokens"] == 4096 * r["steps"] for r in steps)
    found = fig.derive(steps, submitted_at=None, accelerators=8, peak_tflops=989.0,
                       now=0.0, finished=True)  # fmt: skip
    recent = steps[-fig.RECENT_LINES :]
    seconds = sum(r["step_time_s"] * r["steps"] for r in recent)
    rate = sum(r["tokens"] for r in recent) / seconds / 8
    assert found.mfu == pytest.approx(rate * fig.flops_per_token(inputs["model"]) / 989e12)
    assert found.mfu_note is None


def test_the_skip_reason_reaches_the_figures(tmp_path: Path) -> None:
    args = argparse.Namespace(
        job_dir=str(tmp_path), launch_id="L1", efa=False, mfu_inputs='{"note":"no MFU: why"}'
    )
    watch = node_watch.Watch(args, out=io.StringIO())
    for line in (FIXTURES / "nxd_training.log").read_text().splitlines():
        watch.on_line(line, lambda code: None)
    records = [json.loads(line) for line in (tmp_path / "hpl-metrics-L1.jsonl").open()]
    found = fig.derive(records, submitted_at=None, accelerators=8, peak_tflops=989.0,
                       now=0.0, finished=True)  # fmt: skip
    assert found.mfu is None and found.as_dict()["mfu_note"] == "no MFU: why"


def test_a_job_without_an_instance_type_takes_the_peak_of_the_named_gpu() -> None:
    model = {"params": 1_000_000, "layers": 2, "hidden": 64, "seq": 128}
    line = {"event": "step", "step": 1, "tokens": 1000, "step_time_s": 1.0, "time": 1.0,
            "model": model, "device": "NVIDIA H100 80GB HBM3"}  # fmt: skip
    found = fig.derive([line], submitted_at=None, accelerators=1, peak_tflops=None, now=1.0,
                       finished=True)  # fmt: skip
    assert found.peak_tflops == 989.0
    assert found.mfu == pytest.approx(1000 * fig.flops_per_token(model) / 989e12)
    assert fig.device_peak_tflops("NVIDIA A100-SXM4-40GB") == 312.0
    assert fig.device_peak_tflops("cpu") is None
