"""The instance catalog: one table others import (lookup, require, the escape hatch)."""

from __future__ import annotations

import pytest

from hyperpod_launcher.config import instances
from hyperpod_launcher.util.errors import UserError

TRAINING_TYPES = [
    "p4d.24xlarge",
    "p4de.24xlarge",
    "p5.48xlarge",
    "p5e.48xlarge",
    "p5en.48xlarge",
    "p6-b200.48xlarge",
    "g5.12xlarge",
    "g5.48xlarge",
    "g6.48xlarge",
    "g6e.48xlarge",
    "trn1.2xlarge",
    "trn1.32xlarge",
    "trn1n.32xlarge",
    "trn2.48xlarge",
]


@pytest.mark.parametrize("name", TRAINING_TYPES)
def test_accelerated_types_have_every_fact(name: str) -> None:
    for spelling in (name, f"ml.{name}"):
        found = instances.lookup(spelling)
        assert found is not None and found.name == name and found.known
        assert found.accelerator in ("gpu", "neuron")
        assert found.devices >= 1 and found.device_memory_gib > 0
        assert found.vcpus > 0 and found.memory_gib > 0 and found.peak_bf16_tflops > 0


def test_facts_other_parts_read() -> None:
    p5 = instances.require("ml.p5.48xlarge")
    assert (p5.model, p5.devices, p5.efa, p5.peak_bf16_tflops) == ("H100", 8, 32, 989)
    assert p5.fp8_adapter and p5.efa_rdma
    trn1 = instances.require("trn1.32xlarge")
    assert trn1.processes_per_node == 32 and trn1.accelerator == "neuron"
    assert instances.require("p6-b200.48xlarge").peak_bf16_tflops == 2250
    assert not instances.require("g6e.48xlarge").fp8_adapter  # the adapter: p5 family only
    cpu = instances.require("ml.c5.2xlarge")
    assert (cpu.accelerator, cpu.devices, cpu.vcpus) == ("cpu", 0, 8)


def test_unknown_type_names_the_nearest_and_the_escape_hatch() -> None:
    with pytest.raises(UserError) as err:
        instances.require("p5.48xlarg")
    assert "did you mean 'p5.48xlarge'" in str(err.value)
    assert "instance_devices=gpu:<GPUs per node>" in str(err.value)


@pytest.mark.parametrize(
    ("devices", "accelerator", "processes"),
    [
        ("gpu:4", "gpu", 4),
        ("neuron:16:2", "neuron", 32),
        ("neuron:4", "neuron", 4),
        ("cpu", "cpu", 0),
    ],
)
def test_instance_devices_describes_an_unknown_type(
    devices: str, accelerator: str, processes: int
) -> None:
    found = instances.require("ml.p9.96xlarge", devices)
    assert (found.name, found.accelerator, found.processes_per_node) == (
        "p9.96xlarge",
        accelerator,
        processes,
    )
    assert not found.known and found.efa == 0 and found.peak_bf16_tflops == 0


@pytest.mark.parametrize("devices", ["gpu:0", "tpu:4", "gpu:4:2", "neuron:4:2:1", "neuron:x"])
def test_instance_devices_in_a_wrong_form(devices: str) -> None:
    with pytest.raises(UserError, match="instance_devices="):
        instances.require("p9.96xlarge", devices)
