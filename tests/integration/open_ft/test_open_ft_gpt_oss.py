"""GPT-OSS's MXFP4 checkpoint under the open entry: with ZeRO-3 or FSDP one process dequantizes
it once into a bf16 copy under HF_HOME and every rank loads that copy (partitioned, under
ZeRO-3) with the values a plain `Mxfp4Config(dequantize=True)` load gives; a second run reuses
the copy; otherwise each process dequantizes on load, as before; a merged LoRA model loads
back. 2 gloo processes on CPU, a tiny GPT-OSS stored as the hub's are."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests import tiny_lm
from tests.conftest import REPO, require, run_launcher

PROBE = REPO / "tests" / "fixtures" / "scripts" / "zero3_load_probe.py"
GPT_OSS_SFT = "fine-tuning/gpt_oss/open_gpt_oss_120b_seq4k_gpu_sft"  # full weights, ZeRO-3
ZERO3_BATCH = "recipes.deepspeed.global_batch_size=4"
GPT_OSS_LORA = "fine-tuning/gpt_oss/open_gpt_oss_120b_seq4k_gpu_sft_lora"  # FSDP


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> tuple[tiny_lm.TinyLM, Path]:
    for module in ("deepspeed", "trl", "transformers", "torch"):
        require(importlib.util.find_spec(module) is not None, f"{module} (the [train] extra)")
    root = tmp_path_factory.mktemp("gpt-oss")
    tiny = tiny_lm.build(root)
    return tiny, tiny_lm.build_gpt_oss_mxfp4(root, tiny.model)


@pytest.fixture(scope="module")
def reference(checkpoint: tuple[tiny_lm.TinyLM, Path]) -> dict[str, object]:
    """The parameters of today's load: Transformers dequantizes while loading."""
    import torch
    from transformers import AutoModelForCausalLM, Mxfp4Config

    model = AutoModelForCausalLM.from_pretrained(
        checkpoint[1], quantization_config=Mxfp4Config(dequantize=True), dtype=torch.float32
    )
    return {name: param.detach() for name, param in model.named_parameters()}


def _job(
    tmp_path: Path,
    checkpoint: tuple[tiny_lm.TinyLM, Path],
    *overrides: str,
    recipe: str = GPT_OSS_SFT,
) -> Path:
    tiny, model = checkpoint
    proc = run_launcher(
        f"recipes={recipe}",
        "cluster=local",
        "dry_run=true",
        f"base_results_dir={tmp_path}",
        "recipes.run.name=gpt-oss",
        "recipes.trainer.num_nodes=1",
        "recipes.trainer.devices=2",
        "cpu_processes=2",
        f"recipes.model.hf_model_name_or_path={model}",
        "recipes.model.max_position_embeddings=256",
        "recipes.model.max_context_width=32",
        f"recipes.model.data.train_dir={tiny.text}",
        *overrides,
        env={"HPL_STATE_DIR": str(tmp_path / "state"), "XDG_CACHE_HOME": str(tmp_path / "c")},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return tmp_path / "gpt-oss"


def _free_port() -> int:
    """torchrun's default port may be taken by another torchrun on this machine."""
    with socket.socket() as probe_socket:
        probe_socket.bind(("127.0.0.1", 0))
        return int(probe_socket.getsockname()[1])


def _probe(job: Path, hf_home: Path, params: Path) -> tuple[list[dict[str, int]], str]:
    """Load the job's model on 2 ranks as the entry does; rank 0 saves the gathered params."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc-per-node=2",
            f"--master-port={_free_port()}",
            str(PROBE),
            str(job),
            "gpt-oss_hydra.yaml",
            str(params),
        ],
        capture_output=True,
        text=True,
        env={
            **os.environ,
            **tiny_lm.OFFLINE_ENV,
            "PYTHONPATH": str(REPO),
            "HF_HOME": str(hf_home),
        },
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-5000:]
    reports = [json.loads(m) for m in re.findall(r"zero3-probe (\{[^}]*\})", proc.stdout)]
    assert sorted(r["rank"] for r in reports) == [0, 1]
    return reports, proc.stdout


def _assert_same_values(params: Path, reference: dict[str, object]) -> None:
    import torch

    loaded = torch.load(params)
    assert loaded.keys() == reference.keys()
    for name, value in reference.items():
        assert torch.equal(loaded[name], value), name


def test_zero3_dequantizes_once_loads_partitioned_and_reuses_the_copy(
    tmp_path: Path, checkpoint: tuple[tiny_lm.TinyLM, Path], reference: dict[str, object]
) -> None:
    job, hf_home = _job(tmp_path, checkpoint, ZERO3_BATCH), tmp_path / "hf"
    reports, out = _probe(job, hf_home, tmp_path / "first.pt")
    (copy,) = (hf_home / "dequantized").iterdir()  # one complete copy, no temporary left
    assert (copy / "dequantized_from.json").is_file()
    config = json.loads((copy / "config.json").read_text())
    assert "quantization_config" not in config and config["dtype"] == "bfloat16"
    assert out.count("open_ft: MXFP4 checkpoint") == 1
    assert f"dequantized to the bf16 copy {copy}" in out
    for report in reports:
        assert report["zero3_enabled"] and report["zero_stage"] == 3
        assert report["local"] < report["full"]  # this rank holds its part only
        assert 2 * report["local"] >= report["full"]  # and the two parts cover the model
    _assert_same_values(tmp_path / "first.pt", reference)

    written = (copy / "model.safetensors").stat().st_mtime_ns
    reports, out = _probe(job, hf_home, tmp_path / "second.pt")
    assert f"reused the bf16 copy {copy}" in out and "dequantized to" not in out
    assert (copy / "model.safetensors").stat().st_mtime_ns == written
    assert [p.name for p in (hf_home / "dequantized").iterdir()] == [copy.name]
    assert all(2 * r["local"] >= r["full"] > r["local"] for r in reports)
    _assert_same_values(tmp_path / "second.pt", reference)


def test_an_interrupted_copy_is_never_loaded_and_is_written_anew(
    tmp_path: Path, checkpoint: tuple[tiny_lm.TinyLM, Path], reference: dict[str, object]
) -> None:
    job, hf_home = _job(tmp_path, checkpoint, ZERO3_BATCH), tmp_path / "hf"
    _probe(job, hf_home, tmp_path / "first.pt")
    (copy,) = (hf_home / "dequantized").iterdir()
    # What a writer killed before its rename leaves: a temporary folder, no copy.
    interrupted = copy.with_name(copy.name + ".partial-crashed-host-1")
    copy.rename(interrupted)
    (interrupted / "dequantized_from.json").unlink()
    (interrupted / "model.safetensors").write_bytes(b"cut short")
    long_ago = time.time() - 5 * 3600  # older than any writer still at work
    os.utime(interrupted, (long_ago, long_ago))
    at_work = copy.with_name(copy.name + ".partial-other-host-2")  # another job writing now
    at_work.mkdir()

    reports, out = _probe(job, hf_home, tmp_path / "again.pt")
    assert f"dequantized to the bf16 copy {copy}" in out
    assert sorted(p.name for p in (hf_home / "dequantized").iterdir()) == [
        copy.name,
        at_work.name,
    ]
    assert all(2 * r["local"] >= r["full"] > r["local"] for r in reports)
    _assert_same_values(tmp_path / "again.pt", reference)


def test_without_zero3_each_process_dequantizes_on_load(
    tmp_path: Path, checkpoint: tuple[tiny_lm.TinyLM, Path], reference: dict[str, object]
) -> None:
    job = _job(tmp_path, checkpoint, ZERO3_BATCH, "recipes.deepspeed.zero_stage=2")
    hf_home = tmp_path / "hf"
    reports, out = _probe(job, hf_home, tmp_path / "params.pt")
    assert f"MXFP4 checkpoint {checkpoint[1]}: dequantized on load" in out
    assert not (hf_home / "dequantized").exists()
    for report in reports:
        assert report["zero_stage"] == 2 and not report["zero3_enabled"]
        assert report["local"] == report["full"]  # every rank holds the whole model
    _assert_same_values(tmp_path / "params.pt", reference)


def test_fsdp_loads_the_dequantized_copy_too(
    tmp_path: Path, checkpoint: tuple[tiny_lm.TinyLM, Path], reference: dict[str, object]
) -> None:
    """Dequantizing on load would give every FSDP rank a private copy of the whole model; a
    bf16 checkpoint is memory-mapped, its pages shared by the ranks of a node."""
    job, hf_home = _job(tmp_path, checkpoint, recipe=GPT_OSS_LORA), tmp_path / "hf"
    reports, out = _probe(job, hf_home, tmp_path / "params.pt")
    (copy,) = (hf_home / "dequantized").iterdir()
    assert out.count("open_ft: MXFP4 checkpoint") == 1
    assert f"dequantized to the bf16 copy {copy}" in out
    assert all(r["zero_stage"] is None and not r["zero3_enabled"] for r in reports)
    _assert_same_values(tmp_path / "params.pt", reference)


def test_a_node_that_cannot_see_the_copy_writes_its_own(
    tmp_path: Path, checkpoint: tuple[tiny_lm.TinyLM, Path]
) -> None:
    """Two torchrun nodes of one process each, each with its own HF_HOME (node-local storage,
    as SageMaker's): rank 0 writes node 0's copy, node 1's local rank 0 then writes node 1's."""
    job = _job(tmp_path, checkpoint, ZERO3_BATCH)
    port = _free_port()
    nodes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "torch.distributed.run",
                "--nnodes=2",
                f"--node-rank={node}",
                "--nproc-per-node=1",
                "--master-addr=127.0.0.1",
                f"--master-port={port}",
                str(PROBE),
                str(job),
                "gpt-oss_hydra.yaml",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={
                **os.environ,
                **tiny_lm.OFFLINE_ENV,
                "PYTHONPATH": str(REPO),
                "HF_HOME": str(tmp_path / f"node{node}"),
            },
        )
        for node in (0, 1)
    ]
    outs = [node.communicate(timeout=600)[0] for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], outs[0][-3000:] + outs[1][-3000:]
    for node, out in enumerate(outs):
        (copy,) = (tmp_path / f"node{node}" / "dequantized").iterdir()
        assert (copy / "dequantized_from.json").is_file()
        assert f"dequantized to the bf16 copy {copy}" in out
        (report,) = [json.loads(m) for m in re.findall(r"zero3-probe (\{[^}]*\})", out)]
        assert 2 * report["local"] >= report["full"] > report["local"]


def test_merge_on_save_writes_a_gpt_oss_that_loads_back(
    tmp_path: Path, checkpoint: tuple[tiny_lm.TinyLM, Path]
) -> None:
    """The merged model (base dequantized on load + LoRA on attention and the fused experts)
    reloads without a quantization config, every parameter found, with the merged values."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer, Mxfp4Config

    from hyperpod_launcher.examples import open_ft

    tiny, source = checkpoint
    base = AutoModelForCausalLM.from_pretrained(
        source, quantization_config=Mxfp4Config(dequantize=True), dtype=torch.float32
    )
    lora = LoraConfig(
        r=4,
        target_modules=["q_proj"],
        target_parameters=["mlp.experts.gate_up_proj"],
        lora_dropout=0.0,
        init_lora_weights=False,  # a non-zero update, so merging changes the weights
    )
    adapted = get_peft_model(base, lora)
    adapter = tmp_path / "final"
    adapted.save_pretrained(adapter)
    AutoTokenizer.from_pretrained(tiny.model).save_pretrained(adapter)
    expected = {n: p.detach().clone() for n, p in adapted.merge_and_unload().named_parameters()}

    recipe = {"model": {"hf_model_name_or_path": str(source), "peft": {"peft_type": "lora"}}}
    open_ft.merge_adapter(recipe, str(adapter), str(tmp_path / "merged"))

    merged, info = AutoModelForCausalLM.from_pretrained(
        tmp_path / "merged", dtype=torch.float32, output_loading_info=True
    )
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    assert "quantization_config" not in json.loads((tmp_path / "merged/config.json").read_text())
    loaded = dict(merged.named_parameters())
    assert loaded.keys() == expected.keys()
    for name, value in expected.items():
        assert torch.equal(loaded[name], value), name


def test_the_copy_goes_where_hpl_dequantized_dir_says(
    checkpoint: tuple[tiny_lm.TinyLM, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hyperpod_launcher.examples import open_ft

    source = str(checkpoint[1])
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HPL_DEQUANTIZED_DIR", raising=False)
    default = Path(open_ft.dequantized_dir(source, {}))
    monkeypatch.setenv("HPL_DEQUANTIZED_DIR", str(tmp_path / "local"))
    chosen = Path(open_ft.dequantized_dir(source, {}))
    assert chosen.parent == tmp_path / "local"
    assert chosen.name == default.name  # the same copy, kept elsewhere
    assert default.parent.name == "dequantized"
