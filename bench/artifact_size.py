"""Benchmark: bytes of the rendered Slurm artifacts at 1, 16 and 1024 nodes.

    python bench/artifact_size.py

Artifact size must not grow with the node count (no per-node lines, hostfiles or loops).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hyperpod_launcher.launch.compose import plan

RECIPE = "recipes=training/llama/hf_llama3_8b_seq8k_gpu_p5x16_pretrain"


def main() -> None:
    sizes = {}
    for nodes in (1, 16, 1024):
        files = plan(
            [
                RECIPE,
                "cluster=slurm",
                "instance_type=p5.48xlarge",
                "base_results_dir=/fsx/r",
                f"recipes.trainer.num_nodes={nodes}",
                f"recipes.model.shard_degree={min(nodes * 4, 64)}",
            ],
            launch_id="bench",
        ).files
        sizes[nodes] = {name: len(text.encode()) for name, (text, _) in files.items()}
        total = sum(sizes[nodes].values())
        print(
            f"{nodes:5d} nodes: {total} bytes  "
            + ", ".join(f"{k}={v}" for k, v in sorted(sizes[nodes].items()))
        )
    growth = sum(sizes[1024].values()) - sum(sizes[16].values())
    print(f"growth from 16 to 1024 nodes: {growth} bytes (the digits of the node count)")


if __name__ == "__main__":
    main()
