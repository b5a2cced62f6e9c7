"""The environment and limits every job gets by default: one table, one row per variable.

`env_vars` in the config override any of these. The GPU rows follow what HyperPod's own
launcher exports for GPU jobs; the Trainium rows follow NxD Training's setup script.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from hyperpod_launcher import stacks
from hyperpod_launcher.config.instances import InstanceType


@dataclass(frozen=True)
class JobFacts:
    """What the rules look at."""

    accelerator: str
    instance: InstanceType | None
    nodes: int
    stack: str | None  # the recipe's stack (the stacks registry); None: a custom script

    @property
    def efa(self) -> bool:
        return self.instance is not None and bool(self.instance.efa) and self.nodes > 1


def _gpu(job: JobFacts) -> bool:
    return job.accelerator == "gpu"


def _neuron(job: JobFacts) -> bool:
    return job.accelerator == "neuron"


def _stack_asks(name: str) -> Callable[[JobFacts], bool]:
    """A row that applies to the stacks that list it (`Stack.env`)."""
    return lambda job: job.stack is not None and name in stacks.get(job.stack).env


# (variable, value, when it applies, why)
ENV_TABLE: tuple[tuple[str, str, Callable[[JobFacts], bool], str], ...] = (
    ("TORCH_NCCL_ASYNC_ERROR_HANDLING", "1", _gpu, "a failed collective ends the job"),
    ("NCCL_SOCKET_IFNAME", "^lo,docker0,veth_def_agent", _gpu, "no loopback/bridge sockets"),
    ("NCCL_IGNORE_DISABLED_P2P", "1", _gpu, "no error where the VM disables GPU peer access"),
    ("TORCH_DIST_INIT_BARRIER", "1", _gpu, "every rank finishes init before the first step"),
    (
        "CUDA_DEVICE_MAX_CONNECTIONS",
        "1",
        lambda job: _gpu(job) and _stack_asks("CUDA_DEVICE_MAX_CONNECTIONS")(job),
        "Transformer Engine overlaps tensor-parallel communication with compute",
    ),
    ("FI_PROVIDER", "efa", lambda job: job.efa, "libfabric over EFA between nodes"),
    (
        "FI_EFA_USE_DEVICE_RDMA",
        "1",
        lambda job: job.efa and (_neuron(job) or bool(job.instance and job.instance.efa_rdma)),
        "RDMA reads where the instance has them",
    ),
    ("FI_EFA_FORK_SAFE", "1", lambda job: job.efa and _neuron(job), "the Neuron runtime forks"),
    ("MALLOC_ARENA_MAX", "128", _neuron, "32 processes per node initialise on the CPU"),
)

# `ulimit -n` the per-node script sets before starting the processes.
OPEN_FILES: tuple[tuple[int, Callable[[JobFacts], bool]], ...] = ((65535, _neuron),)


def default_env(job: JobFacts) -> dict[str, str]:
    return {name: value for name, value, applies, _ in ENV_TABLE if applies(job)}


def open_files_limit(job: JobFacts) -> int | None:
    return next((limit for limit, applies in OPEN_FILES if applies(job)), None)
