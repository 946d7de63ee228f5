"""Self-supervised training of the encoder on healthy scans already on the model grid.

Input: arrays (N, D, H, W) of normalised images and brain masks (the training cache). No
SimpleITK here, so this stage also runs on a GPU machine that has only torch. The objective is
restoration (degraded input, clean target, brain-weighted L1) plus the family's own terms
(``train_forward`` of each module in ``LatentAnomalyLib.encode``), each weighted by this
config. Optional: outlier removal (:mod:`.outliers`) and data parallelism under torchrun
(:mod:`.distributed`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .. import DEFAULT_SEED
from ..encode.families import EncoderConfig, build_encoder
from ..encode.siamese import latent_mask, siamese_losses
from . import checkpoint as ckpt
from .augment import AugmentConfig, degrade, random_affine
from .distributed import DistContext, gather_share, mean_over_processes, wrap
from .outliers import OutlierFilter

# Family loss term -> the EncoderTrainConfig field that weights it.
TERM_WEIGHTS = {
    "invariance": "siamese_weight",
    "variance": "variance_weight",
    "kl": "kl_weight",
    "commitment": "commitment_weight",
    "energy": "energy_weight",
    "covariance": "covariance_weight",
}
EpochHook = Callable[[int, int, dict], None]


@dataclass(frozen=True)
class EncoderTrainConfig:
    epochs: int = 80
    batch_size: int = 4
    learning_rate: float = 2e-3
    weight_decay: float = 1e-4
    siamese_weight: float = 1.0
    consistency_weight: float = 0.0
    variance_weight: float = 1.0
    kl_weight: float = 1e-3
    commitment_weight: float = 0.25
    energy_weight: float = 1e-3
    covariance_weight: float = 1e-4
    outlier_removal: bool = False
    outlier_gamma: float = 1.5
    outlier_every: int = 5
    outlier_rounds: int = 1
    patch_size: int = 0  # > 0: train on random cubes of this many voxels per side (a reduced CPU scale)
    seed: int = DEFAULT_SEED
    augment: AugmentConfig = field(default_factory=AugmentConfig)


def _fresh(
    config: EncoderConfig, train_config: EncoderTrainConfig, device: str, n: int, context: DistContext
) -> tuple[torch.nn.Module, torch.nn.Module, torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    """A freshly initialised model (seeded), its training step (DDP-wrapped under torchrun), optimiser and schedule."""
    torch.manual_seed(train_config.seed)
    model = build_encoder(config).to(device)
    if context.active and hasattr(model, "noise_share"):  # the VAE's sampling noise, drawn as one process would
        model.noise_share = (context.share(train_config.batch_size), train_config.batch_size)
    optimiser = torch.optim.AdamW(
        model.parameters(), lr=train_config.learning_rate, weight_decay=train_config.weight_decay
    )
    total = int(np.ceil(n / train_config.batch_size)) * train_config.epochs
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=train_config.learning_rate, total_steps=total)
    return model, wrap(model, context), optimiser, scheduler


def train_encoder(
    images: np.ndarray,
    masks: np.ndarray,
    config: EncoderConfig,
    train_config: EncoderTrainConfig,
    device: str = "cpu",
    log: Callable[[str], None] = print,
    on_epoch: EpochHook | None = None,
    context: DistContext | None = None,
    checkpoint: Path | None = None,
) -> tuple[torch.nn.Module, dict]:
    """Train and return (model in eval mode, metrics with the loss history and any removed scans).

    With ``checkpoint`` (a folder), the state after every epoch is saved there and a run interrupted
    before its end resumes after its last saved epoch, with the same result as an uninterrupted run.
    """
    context = context or DistContext(device=device)
    device = context.device if context.active else device
    tc = train_config
    if context.active and tc.consistency_weight > 0:
        raise ValueError("consistency_weight > 0 is not supported under torchrun")
    generator = torch.Generator().manual_seed(tc.seed)
    rng = np.random.default_rng(tc.seed)
    x_all = torch.from_numpy(np.asarray(images, dtype=np.float32))[:, None]
    m_all = torch.from_numpy(np.asarray(masks, dtype=bool))[:, None]
    inputs_key = ckpt.fingerprint(images, masks, config, tc) if checkpoint is not None else ""
    resumed = ckpt.peek(checkpoint, inputs_key) if checkpoint is not None else None
    active = np.asarray(resumed.active) if resumed else np.arange(len(images))
    model, step, optimiser, scheduler = _fresh(config, tc, device, len(active), context)
    outliers = OutlierFilter(tc.outlier_gamma, tc.outlier_every, tc.outlier_rounds) if tc.outlier_removal else None
    history: list[dict[str, float]] = []
    planned, epoch, t0 = tc.epochs, 0, time.time()
    share = context.share(tc.batch_size)
    patches = np.random.default_rng(tc.seed + 1)  # own stream: whole-volume runs draw exactly as before
    if resumed is not None:
        ckpt.restore(checkpoint, model, optimiser, scheduler, generator)
        epoch, planned, history = resumed.epoch, resumed.planned, resumed.history
        rng.bit_generator.state, patches.bit_generator.state = resumed.rng, resumed.patches
        if outliers is not None and resumed.outliers is not None:
            outliers.restore(resumed.outliers)
        log(f"encoder: resumed after epoch {epoch} of {tc.epochs} from {checkpoint}")
    while epoch < tc.epochs:
        model.train()
        n = len(active)
        order = active[rng.permutation(n)]
        sums: dict[str, float] = {}
        batches = 0
        for start in range(0, n - tc.batch_size + 1, tc.batch_size):
            chosen = order[start : start + tc.batch_size]
            idx = torch.from_numpy(chosen)
            stack = torch.cat([x_all[idx], m_all[idx].float()], dim=1).to(device)
            moved = random_affine(stack, tc.augment, generator)
            if tc.patch_size:
                moved = random_patches(moved, tc.patch_size, patches)
            clean, mask = moved[:, :1], moved[:, 1:] > 0.5
            clean = clean * mask
            noisy = degrade(clean, mask.float(), tc.augment, generator)
            clean, mask, noisy = clean[share], mask[share], noisy[share]
            target = model.prefilter(clean)
            zmask = latent_mask(mask, config.stride)
            recon, z, terms = step(noisy, zmask)
            weight = brain_weight(mask.float())
            loss_rec = (weight * (recon - target).abs()).sum() / weight.sum()
            loss = loss_rec
            parts = {"reconstruction": float(loss_rec.detach())}
            if tc.consistency_weight > 0:
                # Two views of one brain (clean, degraded) should share their latent code: the
                # scorers then see anatomy, not the acquisition.
                z_clean = model.encode(clean)
                scale = z_clean.detach().permute(1, 0, 2, 3, 4)[:, zmask[:, 0]].var(dim=1).mean().clamp(min=1e-4)
                diff = ((z - z_clean) ** 2).mean(dim=1, keepdim=True) / scale
                consistency = (diff * zmask).sum() / zmask.sum().clamp(min=1)
                _, variance = siamese_losses(z_clean, zmask)
                loss = loss + tc.consistency_weight * consistency + tc.variance_weight * variance
                parts.update(consistency=float(consistency.detach()), variance=float(variance.detach()))
            for name, term in terms.items():
                loss = loss + getattr(tc, TERM_WEIGHTS[name]) * term
                parts[name] = float(term.detach())
            if outliers is not None:
                with torch.no_grad():
                    per = (weight * (recon - target).abs()).flatten(1).sum(1) / weight.flatten(1).sum(1)
                outliers.record(chosen, gather_share(per, tc.batch_size, context).numpy())
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            scheduler.step()
            for key, value in mean_over_processes(parts, context).items():
                sums[key] = sums.get(key, 0.0) + value
            batches += 1
        history.append({k: v / max(batches, 1) for k, v in sums.items()})
        epoch += 1
        if on_epoch:
            on_epoch(len(history), planned, history[-1])
        if epoch == 1 or epoch % 5 == 0 or epoch == tc.epochs:
            parts_text = " ".join(f"{k} {v:.4f}" for k, v in history[-1].items())
            log(f"encoder: epoch {epoch}/{tc.epochs} {parts_text} ({time.time() - t0:.0f}s)")
        if outliers is not None and outliers.due(epoch):
            if tc.patch_size:  # one random cube per scan is a noisy loss: decide on the whole scans instead
                outliers.record(active, whole_scan_losses(model, x_all[active], m_all[active], device))
            drop = outliers.decide(active)
            log(f"outlier removal: {len(drop)} of {len(active)} scans above {outliers.log[-1]['threshold']:.4f}")
            if len(drop):
                active = np.setdiff1d(active, drop)
                if len(active) < tc.batch_size:
                    raise ValueError(f"outlier removal left {len(active)} scans, fewer than one batch")
                model, step, optimiser, scheduler = _fresh(config, tc, device, len(active), context)
                planned += epoch
                epoch = 0
        if checkpoint is not None and context.rank == 0:
            state = ckpt.Progress(
                epoch,
                planned,
                active.tolist(),
                history,
                outliers.state() if outliers is not None else None,
                rng.bit_generator.state,
                patches.bit_generator.state,
            )
            ckpt.save(checkpoint, inputs_key, model, optimiser, scheduler, generator, state)
    model.eval()
    model.after_training(x_all[active].to(device), m_all[active].to(device), config.stride)
    metrics = {
        "loss_history": history,
        "train_seconds": time.time() - t0,
        "device": device,
        "processes": context.world,
        "kept": active.tolist(),
        "removed": sorted(set(range(len(images))) - set(active.tolist())),
        "outlier_rounds": outliers.log if outliers is not None else [],
    }
    return model, metrics


def brain_weight(mask: torch.Tensor) -> torch.Tensor:
    """Per-voxel weight of the reconstruction loss: 1 in and next to the brain (5-voxel dilation), 0.05 elsewhere."""
    return 0.05 + 0.95 * F.max_pool3d(mask, 5, stride=1, padding=2)


@torch.inference_mode()
def whole_scan_losses(model: torch.nn.Module, images: torch.Tensor, masks: torch.Tensor, device: str) -> np.ndarray:
    """Per scan, the training objective's brain-weighted L1 reconstruction term on the whole clean scan."""
    model.eval()
    losses = []
    for x, m in zip(images, masks):
        mask = m[None].float().to(device)
        clean = x[None].to(device) * mask
        weight = brain_weight(mask)
        recon = model(clean)[0]
        losses.append(float((weight * (recon - model.prefilter(clean)).abs()).sum() / weight.sum()))
    model.train()
    return np.asarray(losses)


def random_patches(stack: torch.Tensor, size: int, rng: np.random.Generator) -> torch.Tensor:
    """One cube of ``size`` voxels per volume of ``stack`` (B, 2, D, H, W; channel 1 the brain mask).

    A cube is centred on a brain voxel of the pair's first volume, drawn at random, and shifted to lie
    inside the volume, its corner on a multiple of 16 voxels so the encoder's latent cells keep the whole
    volume's grid. Consecutive volumes (0-1, 2-3, ...) share their cube: the siamese objective compares
    the pair's codes at the same place. The encoder is fully convolutional: it trains on cubes and
    encodes whole scans.
    """
    if size % 16 or size > min(stack.shape[2:]):
        raise ValueError(f"patch_size {size} must be a multiple of 16 and fit in the volume {tuple(stack.shape[2:])}")
    out, corner = [], [0, 0, 0]
    for i, volume in enumerate(stack):
        if i % 2 == 0:
            brain = torch.nonzero(volume[1] > 0.5)
            centre = brain[int(rng.integers(len(brain)))].tolist() if len(brain) else [d // 2 for d in volume.shape[1:]]
            corner = [
                min(max(0, int(round((c - size / 2) / 16)) * 16), (d - size) // 16 * 16)
                for c, d in zip(centre, volume.shape[1:])
            ]
        out.append(volume[:, corner[0] : corner[0] + size, corner[1] : corner[1] + size, corner[2] : corner[2] + size])
    return torch.stack(out)
