"""Self-supervised training of the encoder on healthy scans already on the model grid.

Input: arrays (N, D, H, W) of normalised images and brain masks (the training cache). No
SimpleITK here, so this stage also runs on a GPU machine that has only torch and MONAI.
The objective is restoration (degraded input, clean target) plus, for the siamese family,
cross-subject latent consistency.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from ..encoders import EncoderConfig, build_encoder
from ..encoders.siamese import latent_mask, siamese_losses
from .augment import AugmentConfig, degrade, random_affine


@dataclass(frozen=True)
class EncoderTrainConfig:
    epochs: int = 80
    batch_size: int = 4
    learning_rate: float = 2e-3
    weight_decay: float = 1e-4
    siamese_weight: float = 1.0
    consistency_weight: float = 0.0
    variance_weight: float = 1.0
    seed: int = 20261123
    augment: AugmentConfig = field(default_factory=AugmentConfig)


def train_encoder(
    images: np.ndarray,
    masks: np.ndarray,
    config: EncoderConfig,
    train_config: EncoderTrainConfig,
    device: str = "cpu",
    log: Callable[[str], None] = print,
) -> tuple[torch.nn.Module, dict]:
    """Train and return (model in eval mode, metrics with the loss history)."""
    torch.manual_seed(train_config.seed)
    generator = torch.Generator().manual_seed(train_config.seed)
    rng = np.random.default_rng(train_config.seed)
    model = build_encoder(config).to(device)
    optimiser = torch.optim.AdamW(
        model.parameters(), lr=train_config.learning_rate, weight_decay=train_config.weight_decay
    )
    n = len(images)
    steps = int(np.ceil(n / train_config.batch_size)) * train_config.epochs
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=train_config.learning_rate, total_steps=steps)
    x_all = torch.from_numpy(np.asarray(images, dtype=np.float32))[:, None]
    m_all = torch.from_numpy(np.asarray(masks, dtype=bool))[:, None]
    siamese = config.family == "siamese"
    history: list[dict[str, float]] = []
    t0 = time.time()
    for epoch in range(train_config.epochs):
        model.train()
        order = rng.permutation(n)
        sums: dict[str, float] = {}
        batches = 0
        for start in range(0, n - train_config.batch_size + 1, train_config.batch_size):
            idx = torch.from_numpy(order[start : start + train_config.batch_size])
            stack = torch.cat([x_all[idx], m_all[idx].float()], dim=1).to(device)
            moved = random_affine(stack, train_config.augment, generator)
            clean, mask = moved[:, :1], moved[:, 1:] > 0.5
            clean = clean * mask
            noisy = degrade(clean, mask.float(), train_config.augment, generator)
            target = model.prefilter(clean)
            recon, z = model(noisy)
            weight = 0.05 + 0.95 * F.max_pool3d(mask.float(), 5, stride=1, padding=2)
            loss_rec = (weight * (recon - target).abs()).sum() / weight.sum()
            loss = loss_rec
            parts = {"reconstruction": float(loss_rec.detach())}
            if train_config.consistency_weight > 0:
                # Two views of one brain (clean, degraded) should share their latent code: the
                # scorers then see anatomy, not the acquisition.
                z_clean = model.encode(clean)
                zmask = latent_mask(mask, config.stride)
                scale = z_clean.detach().permute(1, 0, 2, 3, 4)[:, zmask[:, 0]].var(dim=1).mean().clamp(min=1e-4)
                diff = ((z - z_clean) ** 2).mean(dim=1, keepdim=True) / scale
                consistency = (diff * zmask).sum() / zmask.sum().clamp(min=1)
                _, variance = siamese_losses(z_clean, zmask)
                loss = loss + train_config.consistency_weight * consistency + train_config.variance_weight * variance
                parts.update(consistency=float(consistency.detach()), variance=float(variance.detach()))
            if siamese:
                invariance, variance = siamese_losses(z, latent_mask(mask, config.stride))
                loss = loss + train_config.siamese_weight * invariance + train_config.variance_weight * variance
                parts.update(invariance=float(invariance.detach()), variance=float(variance.detach()))
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            scheduler.step()
            for key, value in parts.items():
                sums[key] = sums.get(key, 0.0) + value
            batches += 1
        history.append({k: v / max(batches, 1) for k, v in sums.items()})
        if epoch == 0 or (epoch + 1) % 5 == 0 or epoch + 1 == train_config.epochs:
            parts_text = " ".join(f"{k} {v:.4f}" for k, v in history[-1].items())
            log(f"encoder: epoch {epoch + 1}/{train_config.epochs} {parts_text} ({time.time() - t0:.0f}s)")
    model.eval()
    return model, {"loss_history": history, "train_seconds": time.time() - t0, "device": device}


@torch.inference_mode()
def encode_all(model: torch.nn.Module, images: np.ndarray, device: str = "cpu", batch_size: int = 4) -> np.ndarray:
    """Latent maps (N, C, d, h, w) of model-grid images, float32 on the CPU."""
    out = []
    for start in range(0, len(images), batch_size):
        x = torch.from_numpy(np.asarray(images[start : start + batch_size], dtype=np.float32))[:, None].to(device)
        out.append(model.encode(x).float().cpu().numpy())
    return np.concatenate(out)
