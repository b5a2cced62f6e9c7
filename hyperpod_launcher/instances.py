"""Instance facts (public AWS specifications): accelerator, devices, EFA, fp8."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Accelerator = Literal["gpu", "neuron", "cpu"]


@dataclass(frozen=True)
class InstanceType:
    name: str
    accelerator: Accelerator
    model: str
    devices: int
    cores_per_device: int = 1
    efa: int = 0
    fp8_hardware: bool = False
    fp8_adapter: bool = False  # the HyperPod training adapter supports fp8 on p5 only

    @property
    def processes_per_node(self) -> int:
        """One process per GPU, or per NeuronCore on Trainium."""
        return self.devices * self.cores_per_device

    @property
    def efa_rdma(self) -> bool:
        return self.name.startswith(("p4d", "p4de", "p5"))


def _table() -> dict[str, InstanceType]:
    rows = [
        InstanceType("p4d.24xlarge", "gpu", "A100 40GB", 8, efa=4),
        InstanceType("p4de.24xlarge", "gpu", "A100 80GB", 8, efa=4),
        InstanceType("p5.48xlarge", "gpu", "H100", 8, efa=32, fp8_hardware=True, fp8_adapter=True),
        InstanceType("p5e.48xlarge", "gpu", "H200", 8, efa=32, fp8_hardware=True, fp8_adapter=True),
        InstanceType(
            "p5en.48xlarge", "gpu", "H200", 8, efa=16, fp8_hardware=True, fp8_adapter=True
        ),
        *(InstanceType(f"g5.{s}", "gpu", "A10G", 1) for s in ("xlarge", "2xlarge", "4xlarge")),
        *(InstanceType(f"g5.{s}", "gpu", "A10G", 1, efa=1) for s in ("8xlarge", "16xlarge")),
        *(InstanceType(f"g5.{s}", "gpu", "A10G", 4, efa=1) for s in ("12xlarge", "24xlarge")),
        InstanceType("g5.48xlarge", "gpu", "A10G", 8, efa=1),
        InstanceType("g6e.12xlarge", "gpu", "L40S", 4, efa=1, fp8_hardware=True),
        InstanceType("g6e.24xlarge", "gpu", "L40S", 4, efa=2, fp8_hardware=True),
        InstanceType("g6e.48xlarge", "gpu", "L40S", 8, efa=4, fp8_hardware=True),
        InstanceType("trn1.2xlarge", "neuron", "Trainium", 1, cores_per_device=2),
        InstanceType("trn1.32xlarge", "neuron", "Trainium", 16, cores_per_device=2, efa=8),
        InstanceType("trn1n.32xlarge", "neuron", "Trainium", 16, cores_per_device=2, efa=16),
        # 8 physical NeuronCores per device, 4 logical at the default LNC=2.
        InstanceType(
            "trn2.48xlarge",
            "neuron",
            "Trainium2",
            16,
            cores_per_device=4,
            efa=16,
            fp8_hardware=True,
        ),
    ]
    return {row.name: row for row in rows}


INSTANCES = _table()


def normalize(name: str) -> str:
    """`ml.p5.48xlarge` (SageMaker spelling) -> `p5.48xlarge` (EC2 spelling)."""
    return name[3:] if name.startswith("ml.") else name


def lookup(name: str | None) -> InstanceType | None:
    """The instance's facts, or None for an unknown or unset type."""
    if not name:
        return None
    return INSTANCES.get(normalize(name))
