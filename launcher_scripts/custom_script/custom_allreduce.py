"""All-reduce across every process of the job: each rank contributes its rank number, and every
rank checks that it received the sum over the world. NCCL on GPUs, gloo on CPUs."""

import os

import torch
import torch.distributed as dist


def main() -> None:
    use_gpu = torch.cuda.is_available()
    dist.init_process_group("nccl" if use_gpu else "gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    device = torch.device("cpu")
    if use_gpu:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    value = torch.full((4,), float(rank), device=device)
    dist.all_reduce(value)
    expected = world * (world - 1) / 2
    assert torch.all(value == expected), f"rank {rank}: got {value.tolist()}, want {expected}"
    print(f"rank {rank}/{world}: all-reduce ok ({expected:g})", flush=True)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
