"""The instance catalog: one table of instance facts that every check, environment rule,
Kubernetes request, SageMaker type and preflight reads.

API: `lookup(name)` (EC2 or SageMaker spelling; None when unknown or unset),
`require(name, devices=None)` (the type, or one line with did-you-mean; `devices` is the
`instance_devices` escape hatch for a type the catalog lacks), `normalize(name)`, `INSTANCES`.

Facts are public AWS specifications (EC2 accelerated-computing instance pages, the EC2 EFA
network-card tables). Dense bf16 peaks per accelerator, without sparsity, from the vendors'
data sheets: NVIDIA A100 312, H100/H200 SXM 989, B200 2250 (HGX B200: 18 PF sparse fp16 / 8 /
2), L4 121, L40S 362, A10 125 (the A10G is AWS's variant of the A10: approximate); AWS Neuron
architecture pages: Trainium 191 and the trn2 instance's 10.7 PF bf16 over 16 Trainium2 (667).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from hyperpod_launcher.util.errors import UserError, did_you_mean

Accelerator = Literal["gpu", "neuron", "cpu"]

DEVICES_KEY = "instance_devices"  # the escape hatch for a type the catalog does not know


@dataclass(frozen=True)
class Chip:
    """One accelerator model: its memory and dense bf16 peak (for MFU)."""

    model: str
    memory_gib: int
    peak_bf16_tflops: float
    fp8_hardware: bool = False


A100_40 = Chip("A100 40GB", 40, 312)
A100_80 = Chip("A100 80GB", 80, 312)
H100 = Chip("H100", 80, 989, fp8_hardware=True)
H200 = Chip("H200", 141, 989, fp8_hardware=True)
B200 = Chip("B200", 179, 2250, fp8_hardware=True)
A10G = Chip("A10G", 24, 125)
L4 = Chip("L4", 24, 121, fp8_hardware=True)
L40S = Chip("L40S", 48, 362, fp8_hardware=True)
TRAINIUM = Chip("Trainium", 32, 191)
TRAINIUM2 = Chip("Trainium2", 96, 667, fp8_hardware=True)
NO_CHIP = Chip("none", 0, 0)


@dataclass(frozen=True)
class InstanceType:
    name: str  # EC2 spelling (no `ml.`)
    accelerator: Accelerator
    model: str
    devices: int
    cores_per_device: int = 1
    efa: int = 0
    fp8_hardware: bool = False
    fp8_adapter: bool = False  # the HyperPod training adapter supports fp8 on p5 only
    device_memory_gib: int = 0
    vcpus: int = 0
    memory_gib: int = 0
    peak_bf16_tflops: float = 0.0  # dense, per accelerator; 0: unknown (no MFU)
    known: bool = True  # False: described by the user through instance_devices

    @property
    def processes_per_node(self) -> int:
        """One process per GPU, or per NeuronCore on Trainium."""
        return self.devices * self.cores_per_device

    @property
    def efa_rdma(self) -> bool:
        return self.name.startswith(("p4d", "p4de", "p5", "p6"))


def _row(
    name: str,
    accelerator: Accelerator,
    chip: Chip,
    devices: int,
    vcpus: int,
    memory_gib: int,
    efa: int = 0,
    cores_per_device: int = 1,
) -> InstanceType:
    return InstanceType(
        name=name,
        accelerator=accelerator,
        model=chip.model,
        devices=devices,
        cores_per_device=cores_per_device,
        efa=efa,
        fp8_hardware=chip.fp8_hardware,
        fp8_adapter=name.startswith("p5"),
        device_memory_gib=chip.memory_gib,
        vcpus=vcpus,
        memory_gib=memory_gib,
        peak_bf16_tflops=chip.peak_bf16_tflops,
    )


def _gpu_family(family: str, chip: Chip, sizes: tuple[tuple[str, int, int, int, int], ...]):
    """(size, GPUs, vCPUs, memory GiB, EFA interfaces) per size of one g-family."""
    return [_row(f"{family}.{s}", "gpu", chip, g, v, m, e) for s, g, v, m, e in sizes]


def _cpu_family(family: str, sizes: tuple[tuple[str, int, int], ...]) -> list[InstanceType]:
    return [_row(f"{family}.{s}", "cpu", NO_CHIP, 0, v, m) for s, v, m in sizes]


# g5 and g6 come in the same sizes: (size, GPUs, vCPUs, memory GiB, EFA interfaces)
G5_G6_SIZES = (
    ("xlarge", 1, 4, 16, 0),
    ("2xlarge", 1, 8, 32, 0),
    ("4xlarge", 1, 16, 64, 0),
    ("8xlarge", 1, 32, 128, 1),
    ("16xlarge", 1, 64, 256, 1),
    ("12xlarge", 4, 48, 192, 1),
    ("24xlarge", 4, 96, 384, 1),
    ("48xlarge", 8, 192, 768, 1),
)


def _table() -> dict[str, InstanceType]:
    rows = [
        _row("p4d.24xlarge", "gpu", A100_40, 8, 96, 1152, efa=4),
        _row("p4de.24xlarge", "gpu", A100_80, 8, 96, 1152, efa=4),
        _row("p5.48xlarge", "gpu", H100, 8, 192, 2048, efa=32),
        _row("p5e.48xlarge", "gpu", H200, 8, 192, 2048, efa=32),
        _row("p5en.48xlarge", "gpu", H200, 8, 192, 2048, efa=16),
        _row("p6-b200.48xlarge", "gpu", B200, 8, 192, 2048, efa=8),
        *_gpu_family(
            "g5",
            A10G,
            G5_G6_SIZES,
        ),
        *_gpu_family(
            "g6",
            L4,
            G5_G6_SIZES,
        ),
        *_gpu_family(
            "g6e",
            L40S,
            (
                ("xlarge", 1, 4, 32, 0),
                ("2xlarge", 1, 8, 64, 0),
                ("4xlarge", 1, 16, 128, 0),
                ("8xlarge", 1, 32, 256, 1),
                ("16xlarge", 1, 64, 512, 1),
                ("12xlarge", 4, 48, 384, 1),
                ("24xlarge", 4, 96, 768, 2),
                ("48xlarge", 8, 192, 1536, 4),
            ),
        ),
        _row("trn1.2xlarge", "neuron", TRAINIUM, 1, 8, 32, cores_per_device=2),
        _row("trn1.32xlarge", "neuron", TRAINIUM, 16, 128, 512, efa=8, cores_per_device=2),
        _row("trn1n.32xlarge", "neuron", TRAINIUM, 16, 128, 512, efa=16, cores_per_device=2),
        # 8 physical NeuronCores per device, 4 logical at the default LNC=2.
        _row("trn2.48xlarge", "neuron", TRAINIUM2, 16, 192, 2048, efa=16, cores_per_device=4),
        # CPU types for helpers, smoke tests and data preparation.
        *_cpu_family(
            "c5",
            (
                ("large", 2, 4),
                ("xlarge", 4, 8),
                ("2xlarge", 8, 16),
                ("4xlarge", 16, 32),
                ("9xlarge", 36, 72),
                ("12xlarge", 48, 96),
                ("18xlarge", 72, 144),
                ("24xlarge", 96, 192),
            ),
        ),
        *_cpu_family(
            "m5",
            (
                ("large", 2, 8),
                ("xlarge", 4, 16),
                ("2xlarge", 8, 32),
                ("4xlarge", 16, 64),
                ("8xlarge", 32, 128),
                ("12xlarge", 48, 192),
                ("16xlarge", 64, 256),
                ("24xlarge", 96, 384),
            ),
        ),
        *_cpu_family("t3", (("medium", 2, 4), ("large", 2, 8), ("xlarge", 4, 16))),
    ]
    return {row.name: row for row in rows}


INSTANCES = _table()


def chip_of_device(device_name: str | None) -> Chip | None:
    """The chip of a device as CUDA names it (`NVIDIA H100 80GB HBM3`), where known."""
    words = set((device_name or "").replace("-", " ").split())
    chips = (H100, H200, B200, A100_80, A10G, L4, L40S)  # the A100s share one peak
    return next((chip for chip in chips if chip.model.split()[0] in words), None)


def normalize(name: str) -> str:
    """`ml.p5.48xlarge` (SageMaker spelling) -> `p5.48xlarge` (EC2 spelling)."""
    return name[3:] if name.startswith("ml.") else name


def lookup(name: str | None) -> InstanceType | None:
    """The instance's facts, or None for an unknown or unset type."""
    if not name:
        return None
    return INSTANCES.get(normalize(name))


DEVICES_FORM = re.compile(r"^(gpu):([1-9]\d{0,2})$|^(neuron):([1-9]\d{0,2})(?::([1-9]\d?))?$|^cpu$")
DEVICES_HELP = (
    f"{DEVICES_KEY}=gpu:<GPUs per node>, neuron:<devices>[:<NeuronCores per device>] or cpu"
)


def described(name: str, devices: str) -> InstanceType:
    """A type the catalog lacks, as `instance_devices` describes it (no EFA, no peak)."""
    match = DEVICES_FORM.match(devices.strip().lower())
    if not match:
        raise UserError(f"{DEVICES_KEY}={devices!r}: expected {DEVICES_HELP}")
    kind = match.group(1) or match.group(3) or "cpu"
    count = int(match.group(2) or match.group(4) or 0)
    cores = int(match.group(5) or 1)
    accelerator: Accelerator = "gpu" if kind == "gpu" else "neuron" if kind == "neuron" else "cpu"
    return InstanceType(normalize(name), accelerator, kind, count, cores, known=False)


def require(name: str, devices: str | None = None) -> InstanceType:
    """The catalog's facts for `name`; for a type it lacks, the devices the user gave with
    `instance_devices`, else one line with the nearest names and the escape hatch."""
    found = lookup(name)
    if found is not None:
        if devices:
            raise UserError(
                f"{DEVICES_KEY}={devices} is for instance types the catalog does not know; "
                f"instance_type={name} is known ({found.devices} x {found.model}): drop "
                f"{DEVICES_KEY}"
            )
        return found
    if devices:
        return described(name, devices)
    raise UserError(
        f"instance_type={name}: unknown instance type"
        f"{did_you_mean(normalize(name), INSTANCES)}; for a type the launcher does not know, "
        f"give its devices: {DEVICES_HELP}"
    )
