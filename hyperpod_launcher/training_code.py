"""The training code each recipe kind (stack) was written for, pinned: one row per stack.

A launch whose code is the stack's repository and names no `git.commit` or `git.branch` checks
out the pinned commit; the per-node script puts the checkout's package ahead of the image's
(both packages are pure Python, so `PYTHONPATH=<checkout>/src` suffices) and says in one line
when the checkout has no such package.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Pin:
    repo: str
    tag: str
    commit: str
    package: str  # the package folder inside the checkout

    def is_repo(self, location: str | None) -> bool:
        def norm(url: str) -> str:
            return url.rstrip("/").removesuffix(".git").lower()

        return location is not None and norm(location) == norm(self.repo)


PINS = {
    "adapter": Pin(
        "https://github.com/aws/sagemaker-hyperpod-training-adapter-for-nemo.git",
        "v1.4.0",
        "0f91fdd5839e26cf310665eb23e8224a3de6a267",
        "src/hyperpod_nemo_adapter",
    ),
    "neuron": Pin(
        "https://github.com/aws-neuron/neuronx-distributed-training.git",
        "Neuron SDK 2.26.0",
        "9169aa03f39efd4eb02da63891a7ed98defb1714",
        "src/neuronx_distributed_training",
    ),
}
