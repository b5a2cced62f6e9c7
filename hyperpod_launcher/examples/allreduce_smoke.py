"""Distributed smoke test: every rank all-reduces its rank; the sum must be n(n-1)/2.

Run by torchrun (RANK, WORLD_SIZE, LOCAL_RANK set). Uses NCCL on GPUs, gloo otherwise.
Also trains a tiny DDP model for a few steps so the gradient path is exercised.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys

import torch
import torch.distributed as dist


def train_ddp(device: torch.device | str, use_cuda: bool, steps: int, seed: int) -> float:
    """A few DDP steps on a tiny model. The model lives only in here: DDP holds the process
    group, and a group still referenced at interpreter exit can abort gloo's threads."""
    model = torch.nn.parallel.DistributedDataParallel(
        torch.nn.Linear(8, 1).to(device), device_ids=[device.index] if use_cuda else None
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    generator = torch.Generator().manual_seed(seed)
    loss = torch.zeros(())
    for _ in range(steps):
        batch = torch.randn(16, 8, generator=generator).to(device)
        loss = model(batch).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return float(loss.item())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=3, help="DDP training steps")
    parser.add_argument("--result-file", default=None, help="rank 0 writes the sum here")
    args = parser.parse_args()

    use_cuda = torch.cuda.is_available()
    dist.init_process_group("nccl" if use_cuda else "gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0))) if use_cuda else "cpu"
    if use_cuda:
        torch.cuda.set_device(device)

    value = torch.tensor([float(rank)], device=device)
    dist.all_reduce(value)
    expected = world * (world - 1) / 2
    if value.item() != expected:
        raise SystemExit(f"rank {rank}: all_reduce gave {value.item()}, expected {expected}")

    loss = train_ddp(device, use_cuda, args.steps, seed=rank)

    print(f"rank {rank}/{world} on {socket.gethostname()}: all_reduce sum {value.item():g} ok")
    if rank == 0:
        print(f"all_reduce OK: world size {world}, sum {value.item():g}, loss {loss:.4f}")
        if args.result_file:
            with open(args.result_file, "w") as handle:
                handle.write(f"{world} {value.item():g}\n")
    # Leave together, and without tearing the gloo group down: its destructor races with the
    # peers' closing sockets and now and then aborts a rank ("terminate called without an
    # active exception") after the work has succeeded. Nothing is left to clean up.
    dist.barrier()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
