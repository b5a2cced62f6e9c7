"""The metrics contract, the stack log parsers (on real lines), the watcher's line handling and
the derived figures."""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import pytest

from hyperpod_launcher.telemetry import figures as fig
from hyperpod_launcher.telemetry import node_watch as nw
from hyperpod_launcher.telemetry import progress
from tests.conftest import REPO

FIXTURES = REPO / "tests" / "fixtures" / "telemetry"


def parsed(name: str) -> list[dict]:
    lines = (FIXTURES / name).read_text().splitlines()
    return [r for r in map(nw.parse_stack_line, lines) if r is not None]


def test_contract_line_round_trips_with_a_rank_prefix() -> None:
    line = nw.format_line({"step": 3, "loss": 1.5})
    assert line.startswith("hpl-metrics {")
    assert nw.parse_line(f"[rank0]:{line}") == {"step": 3, "loss": 1.5}
    assert nw.parse_line("[rank0]:open_ft step 3 {}") is None
    assert nw.parse_line("hpl-metrics {not json") is None


def test_nxd_training_progress_bar_lines() -> None:
    records = parsed("nxd_training.log")
    assert [r["step"] for r in records] == [189, 190, 191]
    assert {r["max_steps"] for r in records} == {301501}
    assert [r["loss"] for r in records] == [7.56, 7.56, 7.91]
    assert records[0]["step_time_s"] == pytest.approx(18.79)
    assert records[-1]["consumed_samples"] == 24320


def test_adapter_nemo1_progress_bar_lines() -> None:
    records = parsed("lightning_bar_nemo1.log")
    assert [r["step"] for r in records] == [34103, 34106, 34109]
    assert records[0]["max_steps"] == 1100000
    assert records[0]["loss"] == 2.51
    assert records[0]["step_time_s"] == pytest.approx(1 / 1.73)


def test_nemo2_progress_printer_lines() -> None:
    records = parsed("nemo2_progress_printer.log")
    assert [r["step"] for r in records] == [1, 2, 3, 6]  # validation and NeMo's own lines skipped
    assert {r["max_steps"] for r in records} == {10}
    assert records[1] == {
        "event": "step",
        "step": 2,
        "max_steps": 10,
        "loss": 1.37,
        "lr": 2e-05,
        "consumed_samples": 2,
        "step_time_s": 0.3513,
    }


def test_nccl_network_choice_from_fixture_lines() -> None:
    efa = [nw.nccl_network(line) for line in (FIXTURES / "nccl_efa.log").read_text().splitlines()]
    sockets = (FIXTURES / "nccl_socket.log").read_text().splitlines()
    assert [n for n in efa if n] == ["AWS Libfabric"]
    assert [n for n in map(nw.nccl_network, sockets) if n] == ["Socket"]


def watch(tmp_path: Path, efa: bool = True) -> nw.Watch:
    args = argparse.Namespace(job_dir=str(tmp_path), launch_id="L1", efa=efa)
    return nw.Watch(args, out=io.StringIO())


def test_watcher_converts_stack_lines_once_per_step_and_records_them(tmp_path: Path) -> None:
    w = watch(tmp_path)
    stops: list[int] = []
    for line in (FIXTURES / "nxd_training.log").read_text().splitlines():
        w.on_line(line, stops.append)
        w.on_line(line, stops.append)  # a progress bar redraws the same step
    w.on_line(
        "[rank1]:" + (FIXTURES / "nxd_training.log").read_text().splitlines()[0], stops.append
    )
    lines = (tmp_path / "hpl-metrics-L1.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [189, 190, 191]
    assert [json.loads(line)["steps"] for line in lines] == [1, 1, 1]
    assert w.out.getvalue().count("hpl-metrics ") == 3  # type: ignore[attr-defined]
    assert not stops and w.last_step is not None


def test_efa_tripwire_reports_sockets_and_stops_when_efa_is_required(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stops: list[int] = []
    w = watch(tmp_path)
    for line in (FIXTURES / "nccl_efa.log").read_text().splitlines():
        w.on_line(line, stops.append)
    assert not stops and "WARNING" not in capsys.readouterr().err
    monkeypatch.setenv("HPL_REQUIRE_EFA", "true")
    w = watch(tmp_path)
    for line in (FIXTURES / "nccl_socket.log").read_text().splitlines():
        w.on_line("[rank0]:" + line, stops.append)
    assert stops == [nw.NO_EFA_EXIT]
    assert capsys.readouterr().err.count("chose TCP sockets, not EFA") == 1
    events = [json.loads(x) for x in (tmp_path / "hpl-metrics-L1.jsonl").read_text().splitlines()]
    assert [(e["network"], e["efa"]) for e in events] == [
        ("AWS Libfabric", True),
        ("Socket", False),
    ]


def test_without_efa_the_network_line_is_not_checked(tmp_path: Path) -> None:
    stops: list[int] = []
    w = watch(tmp_path, efa=False)
    for line in (FIXTURES / "nccl_socket.log").read_text().splitlines():
        w.on_line(line, stops.append)
    assert not stops and not (tmp_path / "hpl-metrics-L1.jsonl").exists()


def test_hang_window_default_explicit_and_floor() -> None:
    assert nw.hang_window([], None, floor=900, factor=10) == 900
    assert nw.hang_window([100, 200, 300], None, floor=900, factor=10) == 2000
    assert nw.hang_window([1, 2, 3], None, floor=900, factor=10) == 900
    assert nw.hang_window([100], 60, floor=900, factor=10) == 60


def test_watchdog_arms_after_the_first_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HPL_HANG_TIMEOUT", "30")
    w = watch(tmp_path, efa=False)
    assert w.hung_for(10**10) is None  # no step yet: start-up may take long
    w.step_seen(1000.0)
    assert w.hung_for(1020.0) is None
    assert w.hung_for(1031.0) == 30
    monkeypatch.setenv("HPL_HANG_TIMEOUT", "0")
    off = watch(tmp_path, efa=False)
    off.step_seen(1000.0)
    assert off.hung_for(10**10) is None


def step(n: int, t: float, attempt: int = 0, **extra: object) -> dict:
    return {
        "event": "step",
        "step": n,
        "max_steps": 10,
        "tokens": 1000,
        "steps": 1,
        "step_time_s": 2.0,
        "time": t,
        "attempt": attempt,
        "loss": 3.0 - n / 10,
        **extra,
    }


def test_figures_from_a_run_with_a_restart() -> None:
    model = {"params": 1_000_000, "layers": 2, "hidden": 64, "seq": 128}
    records = [
        {"event": "attempt", "attempt": 0, "time": 1010.0},
        step(1, 1020.0),
        step(2, 1022.0),
        step(3, 1024.0),
        {"event": "attempt", "attempt": 1, "time": 1030.0},
        step(3, 1040.0, 1),
        step(4, 1042.0, 1, model=model),
    ]
    found = fig.derive(
        records,
        submitted_at="1970-01-01T00:16:40+00:00",
        accelerators=4,
        peak_tflops=100.0,
        now=1050.0,
        finished=False,
    )
    assert (found.step, found.max_steps, found.percent) == (4, 10, 40.0)
    assert found.tokens == 5000
    assert found.tokens_per_s_per_accelerator == pytest.approx(1000 / 2.0 / 4)
    assert found.time_to_first_step_s == 20.0 and found.queue_wait_s == 10.0
    assert found.startup_s == 10.0
    assert found.productive_s == 8.0  # step 3 ran twice: its second run counts
    assert found.elapsed_s == 40.0 and found.goodput == pytest.approx(0.2)
    assert found.eta_s == pytest.approx(6 * 2.0)
    assert found.attempts == 2
    per_token = 6 * 1_000_000 + 12 * 2 * 64 * 128
    assert fig.flops_per_token(model) == per_token
    assert found.mfu == pytest.approx(125.0 * per_token / 100e12)


def test_figures_without_steps_and_without_a_peak() -> None:
    found = fig.derive(
        [], submitted_at=None, accelerators=None, peak_tflops=None, now=0, finished=False
    )
    assert found.step is None and progress.line(found) == "no training step yet"
    assert fig.dense_bf16_peak_tflops("ml.p5.48xlarge") == 989.0
    assert fig.dense_bf16_peak_tflops("p5en.48xlarge") == 989.0
    assert fig.dense_bf16_peak_tflops(None) is None


def test_progress_line_and_causes() -> None:
    found = fig.Figures(
        step=1200,
        max_steps=5000,
        percent=24.0,
        loss=1.83,
        tokens_per_s_per_accelerator=41234.0,
        mfu=0.38,
        eta_s=3 * 3600 + 600,
    )
    assert progress.line(found) == (
        "step 1200/5000 (24 %), loss 1.83, 41.2k tok/s/GPU, MFU 38 %, ETA 3h10m"
    )
    hang = fig.Figures(hang={"host": "node1", "window_s": 900, "stacks": "/x/stacks.txt"})
    assert progress.causes(hang, nw.HANG_EXIT) == [
        "hang: no training step for 15m00s on node1; stacks: /x/stacks.txt"
    ]
    assert progress.causes(fig.Figures(), nw.NO_EFA_EXIT) == [
        "network: NCCL chose TCP sockets instead of EFA"
    ]


def test_the_docs_state_the_watchdog_and_tripwire_defaults() -> None:
    readme = (REPO / "docs" / "watching-a-run.md").read_text()
    assert f"10 x the median time between step lines, at least {nw.DEFAULT_HANG_FLOOR_S:.0f} s" in (
        readme.replace("\n", " ")
    )
    assert nw.DEFAULT_HANG_FACTOR == 10
    assert f"ends the attempt with exit code {nw.HANG_EXIT}" in readme.replace("\n", " ")
    assert f"ends the attempt with exit code {nw.NO_EFA_EXIT} instead" in readme.replace("\n", " ")
    assert f"the last {fig.RECENT_LINES} step lines" in readme
