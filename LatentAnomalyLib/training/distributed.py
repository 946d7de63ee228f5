"""Data-parallel encoder training under ``torchrun`` (torch.distributed + DistributedDataParallel).

``torchrun --nproc_per_node N -m LatentAnomalyLib.cli train ... --stages encoder`` starts N
processes; each reads RANK / WORLD_SIZE / LOCAL_RANK from the environment, joins one process
group (gloo on CPU, NCCL on CUDA), and :func:`train_encoder` wraps the model's training step in
DDP. Every process draws the same shuffling and augmentation for the whole batch (same seeds) and
trains on its contiguous share of it, so the run sees exactly the batches one process would see;
DDP averages the gradients. Only rank 0 writes files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world: int = 1
    device: str = "cpu"

    @property
    def active(self) -> bool:
        return self.world > 1

    def share(self, batch: int) -> slice:
        """This process's contiguous share of a batch of ``batch`` samples."""
        if batch % self.world:
            raise ValueError(f"batch size {batch} is not divisible by the {self.world} processes")
        size = batch // self.world
        return slice(self.rank * size, (self.rank + 1) * size)


def from_environment(device: str) -> DistContext:
    """The process group torchrun describes (joined here), or a single-process context."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext(device=device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device.startswith("cuda"):
        torch.cuda.set_device(local)
        device = f"cuda:{local}"
    return DistContext(rank=dist.get_rank(), world=dist.get_world_size(), device=device)


class TrainStep(nn.Module):
    """``forward`` = the family's ``train_forward``: DDP synchronises gradients only through ``forward``."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, zmask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict]:
        return self.model.train_forward(x, zmask)


def wrap(model: nn.Module, context: DistContext) -> nn.Module:
    step = TrainStep(model)
    if not context.active:
        return step
    from torch.nn.parallel import DistributedDataParallel

    ids = [torch.device(context.device).index] if context.device.startswith("cuda") else None
    return DistributedDataParallel(step, device_ids=ids)


def mean_over_processes(values: dict[str, float], context: DistContext) -> dict[str, float]:
    """Average logged loss terms over the processes (each saw its share of the batch)."""
    if not context.active or not values:
        return values
    keys = sorted(values)
    t = torch.tensor([values[k] for k in keys], dtype=torch.float64)
    dist.all_reduce(t)
    return {k: float(v) / context.world for k, v in zip(keys, t.tolist())}


def gather_share(values: torch.Tensor, batch: int, context: DistContext) -> torch.Tensor:
    """Per-sample values of the whole batch from each process's share (zeros-and-sum all-reduce)."""
    if not context.active:
        return values
    full = torch.zeros(batch, dtype=torch.float64)
    full[context.share(batch)] = values.detach().double().cpu()
    dist.all_reduce(full)
    return full
