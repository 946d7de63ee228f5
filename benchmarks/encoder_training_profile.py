"""Where one CPU training step of the encoder spends its time (issue 16, item 3).

Times each part of ``train_encoder``'s step (batch gathering, geometric augmentation, input
degradation, target prefilter, forward, loss, backward, optimiser) on batches of model-grid
volumes, then prints torch.profiler's top operators. Input: a training cache (``cache/train.npz``
of a ``latent-anomaly train`` work folder) or, without one, random volumes of the model grid.

    python benchmarks/encoder_training_profile.py [--cache WORK/cache/train.npz] [--config configs/default_t1.json]
        [--steps 4] [--threads N] [--profile]
"""

from __future__ import annotations

import argparse
import resource
import time
from collections import defaultdict
from itertools import pairwise

import numpy as np
import torch
import torch.nn.functional as F

from LatentAnomalyLib.encode.families import build_encoder
from LatentAnomalyLib.encode.siamese import latent_mask
from LatentAnomalyLib.training.augment import degrade, random_affine
from LatentAnomalyLib.training.config import TrainConfig
from LatentAnomalyLib.training.cpu_memory import keep_freed_memory


def _data(cache: str | None, shape: tuple[int, int, int], n: int) -> tuple[torch.Tensor, torch.Tensor]:
    if cache:
        data = np.load(cache)
        images, masks = data["images"].astype(np.float32), data["masks"].astype(bool)
        reps = int(np.ceil(n / len(images)))
        images, masks = np.concatenate([images] * reps)[:n], np.concatenate([masks] * reps)[:n]
    else:
        rng = np.random.default_rng(0)
        masks = np.zeros((n, *shape), bool)
        masks[:, 10:-10, 10:-10, 10:-10] = True
        images = (rng.random((n, *shape)) * masks).astype(np.float32)
    return torch.from_numpy(images)[:, None], torch.from_numpy(masks)[:, None]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache")
    parser.add_argument("--config", default="configs/default_t1.json")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--profile", action="store_true", help="also print torch.profiler's top operators")
    parser.add_argument(
        "--glibc-default", action="store_true", help="leave glibc's allocator as it is (what training did before)"
    )
    args = parser.parse_args()
    if not args.glibc_default:
        keep_freed_memory()  # as the train command's encoder stage does on the CPU
    if args.threads:
        torch.set_num_threads(args.threads)
    config = TrainConfig.from_file(args.config)
    tc = config.encoder_train
    shape = tuple(reversed(config.preprocess.grid.size))
    x_all, m_all = _data(args.cache, shape, tc.batch_size * 2)
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    model = build_encoder(config.encoder).train()
    optimiser = torch.optim.AdamW(model.parameters(), lr=tc.learning_rate, weight_decay=tc.weight_decay)
    times: dict[str, list[float]] = defaultdict(list)
    cpu: dict[str, list[float]] = defaultdict(list)
    faults: list[int] = []

    def step() -> None:
        marks = [("start", time.perf_counter(), time.process_time())]

        def mark(name: str) -> None:
            marks.append((name, time.perf_counter(), time.process_time()))

        idx = torch.randperm(len(x_all), generator=generator)[: tc.batch_size]
        stack = torch.cat([x_all[idx], m_all[idx].float()], dim=1)
        mark("gather")
        moved = random_affine(stack, tc.augment, generator)
        clean, mask = moved[:, :1], moved[:, 1:] > 0.5
        clean = clean * mask
        mark("augment: affine")
        noisy = degrade(clean, mask.float(), tc.augment, generator)
        mark("augment: degrade")
        target = model.prefilter(clean)
        zmask = latent_mask(mask, config.encoder.stride)
        mark("target prefilter")
        recon, _, terms = model.train_forward(noisy, zmask)
        mark("forward")
        weight = 0.05 + 0.95 * F.max_pool3d(mask.float(), 5, stride=1, padding=2)
        loss = (weight * (recon - target).abs()).sum() / weight.sum() + sum(terms.values())
        mark("loss")
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        mark("backward")
        optimiser.step()
        mark("optimiser")
        for (_, a, ca), (name, b, cb) in pairwise(marks):
            times[name].append(b - a)
            cpu[name].append(cb - ca)
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt)

    step()  # warm-up (allocations, first-call overheads)
    times.clear()
    cpu.clear()
    for _ in range(args.steps):
        step()
    total = sum(np.median(v) for v in times.values())
    total_cpu = sum(np.median(v) for v in cpu.values())
    allocator = "glibc default" if args.glibc_default else "freed memory kept"
    print(
        f"grid {shape}, batch {tc.batch_size}, family {config.encoder.family}, threads {torch.get_num_threads()}, {allocator}"
    )
    print(f"{'part':<20s} {'wall s':>8s} {'share':>6s} {'CPU s':>8s}")
    for name, values in times.items():
        print(f"{name:<20s} {np.median(values):8.3f} {np.median(values) / total:6.1%} {np.median(cpu[name]):8.3f}")
    print(f"{'step (sum of medians)':<20s} {total:8.3f} {'':>6s} {total_cpu:8.3f}")
    print(f"minor page faults per step: {int(np.median(np.diff(faults)))}")
    if args.profile:
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU]) as prof:
            step()
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))


if __name__ == "__main__":
    main()
