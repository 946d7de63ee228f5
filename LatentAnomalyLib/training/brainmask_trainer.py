"""Train the 4 mm brain-extraction U-Net on IXI heads and their DLMUSE brain labels.

Augmentation covers what real inputs vary in: pose (rotation, scale, shift), left-right flips,
contrast (gamma), bias fields, noise, and skull-stripped inputs (a fifth of the samples are
masked), so the same network is safe on either kind of scan.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .. import DEFAULT_SEED
from ..case import Case
from ..preprocess.brainmask_net import BrainMaskConfig, build_net, net_input, predict_array

PATCH = (64, 64, 48)  # (z, y, x): a whole IXI head at 4 mm (60 x 60 x 45) plus padding


@dataclass(frozen=True)
class BrainMaskTrainConfig:
    epochs: int = 40
    batch_size: int = 4
    learning_rate: float = 2e-3
    stripped_probability: float = 0.2
    seed: int = DEFAULT_SEED


def load_case(case: Case, config: BrainMaskConfig) -> tuple[np.ndarray, np.ndarray]:
    """(network input, brain label) on the 4 mm working grid of one IXI head."""
    import SimpleITK as sitk

    from ..io.read import read_image
    from ..preprocess.geometry import axis_aligned_grid, resample, resample_mask

    image = read_image(case.images["t1"])
    work = resample(image, axis_aligned_grid(image, config.spacing))
    label = resample_mask(sitk.ReadImage(str(case.brain_mask)) > 0, work)
    return net_input(sitk.GetArrayFromImage(work)), label.astype(np.uint8)


def load_cases(cases: Sequence[Case], config: BrainMaskConfig) -> list[tuple[np.ndarray, np.ndarray]]:
    return [load_case(c, config) for c in cases]


def _augmenter(config: BrainMaskTrainConfig) -> Callable[[dict], dict]:
    from monai import transforms as mt

    return mt.Compose(
        [
            mt.RandAffined(
                keys=("image", "label"),
                prob=0.9,
                rotate_range=(0.35, 0.35, 0.35),
                scale_range=(0.15, 0.15, 0.15),
                translate_range=(6, 6, 6),
                mode=("bilinear", "nearest"),
                padding_mode="zeros",
            ),
            mt.RandFlipd(keys=("image", "label"), prob=0.5, spatial_axis=2),
            mt.ResizeWithPadOrCropd(keys=("image", "label"), spatial_size=PATCH),
            mt.RandBiasFieldd(keys="image", prob=0.5, coeff_range=(0.0, 0.3)),
            mt.RandAdjustContrastd(keys="image", prob=0.5, gamma=(0.6, 1.6)),
            mt.RandScaleIntensityd(keys="image", prob=0.5, factors=0.2),
            mt.RandGaussianNoised(keys="image", prob=0.5, std=0.03),
        ]
    )


def _strip(sample: dict, rng: np.random.Generator) -> dict:
    """Mask the head with a slightly dilated brain label: what a skull-stripped scan looks like."""
    from scipy import ndimage

    label = sample["label"][0] > 0.5
    grown = ndimage.binary_dilation(label, iterations=int(rng.integers(0, 2)))
    sample["image"] = sample["image"] * torch.as_tensor(grown[None], dtype=sample["image"].dtype)
    return sample


def dice(pred: np.ndarray, target: np.ndarray) -> float:
    denom = float(pred.sum() + target.sum())
    return 1.0 if denom == 0 else 2.0 * float((pred & target).sum()) / denom


def train_brainmask(
    train: Sequence[tuple[np.ndarray, np.ndarray]],
    val: Sequence[tuple[np.ndarray, np.ndarray]],
    config: BrainMaskConfig,
    train_config: BrainMaskTrainConfig,
    device: str = "cpu",
    log: Callable[[str], None] = print,
) -> tuple[torch.nn.Module, dict]:
    """Train and return (network in eval mode, metrics dict with validation Dice)."""
    from monai.losses import DiceCELoss
    from monai.utils import set_determinism

    set_determinism(seed=train_config.seed)
    rng = np.random.default_rng(train_config.seed)
    t0 = time.time()

    augment = _augmenter(train_config)
    augment.set_random_state(seed=train_config.seed)
    net = build_net(config).to(device)
    optimiser = torch.optim.AdamW(net.parameters(), lr=train_config.learning_rate, weight_decay=1e-4)
    steps_per_epoch = int(np.ceil(len(train) / train_config.batch_size))
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, max_lr=train_config.learning_rate, total_steps=train_config.epochs * steps_per_epoch
    )
    loss_fn = DiceCELoss(sigmoid=True)
    history = []
    for epoch in range(train_config.epochs):
        net.train()
        order = rng.permutation(len(train))
        losses = []
        for start in range(0, len(order), train_config.batch_size):
            batch = []
            for i in order[start : start + train_config.batch_size]:
                image, label = train[i]
                sample = augment({"image": image[None].astype(np.float32), "label": label[None].astype(np.float32)})
                if rng.random() < train_config.stripped_probability:
                    sample = _strip(sample, rng)
                batch.append(sample)
            x = torch.stack([torch.as_tensor(s["image"]) for s in batch]).float().to(device)
            y = torch.stack([torch.as_tensor(s["label"]) for s in batch]).float().to(device)
            loss = loss_fn(net(x), y)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            scheduler.step()
            losses.append(float(loss.detach()))
        history.append(float(np.mean(losses)))
        log(f"brain mask: epoch {epoch + 1}/{train_config.epochs} loss {history[-1]:.4f} ({time.time() - t0:.0f}s)")
    net.eval()
    val_dice = [dice(predict_array(net, image.astype(np.float32), device) >= 0.5, label > 0.5) for image, label in val]
    metrics = {
        "val_dice_4mm_mean": float(np.mean(val_dice)) if val_dice else None,
        "loss_history": history,
        "train_seconds": time.time() - t0,
        "device": device,
    }
    log(f"brain mask: validation Dice (4 mm grid) {metrics['val_dice_4mm_mean']}")
    return net, metrics


def cached_pairs(cases: Sequence[Case], cfg: BrainMaskConfig, path: Path, force: bool) -> list[tuple[np.ndarray, np.ndarray]]:
    """4 mm heads and brain labels of ``cases``, cached at ``path`` as uint8 (the network's training input)."""
    if force or not path.exists():
        path.parent.mkdir(exist_ok=True)
        arrays = {}
        for i, (x, y) in enumerate(load_cases(cases, cfg)):
            arrays[f"x{i}"] = np.round(np.clip(x, 0.0, 1.5) / 1.5 * 255).astype(np.uint8)
            arrays[f"y{i}"] = y.astype(np.uint8)
        np.savez_compressed(path, **arrays)
    data = np.load(path)
    n = len([k for k in data.files if k.startswith("x")])
    return [(data[f"x{i}"].astype(np.float32) / 255 * 1.5, data[f"y{i}"]) for i in range(n)]
