"""Batch augmentation on the training device (GPU or CPU), in torch.

Two kinds, for two reasons:
- geometry (small affine jitter, left-right flips): registration is affine only and never exact,
  so healthy brains reach the model slightly shifted, rotated and scaled;
- degradation of the input only (blur, noise, bias field, contrast and gamma changes): the
  autoencoder must restore the clean scan, so its latents learn to ignore what differs between
  scanners and acquisition eras, not what differs between healthy tissue and lesions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class AugmentConfig:
    rotation_deg: float = 6.0
    scale: float = 0.06
    shift_vox: float = 2.0
    flip_probability: float = 0.5
    blur_probability: float = 0.3
    blur_sigma_vox: tuple[float, float] = (0.4, 1.5)
    sharpen_probability: float = 0.0
    sharpen_amount: tuple[float, float] = (0.3, 1.0)
    noise_probability: float = 0.5
    noise_std: tuple[float, float] = (0.01, 0.06)
    bias_probability: float = 0.4
    bias_strength: float = 0.15
    contrast_probability: float = 0.5
    contrast_range: tuple[float, float] = (0.75, 1.25)
    gamma_probability: float = 0.3
    gamma_range: tuple[float, float] = (0.8, 1.25)


def _rotation(angles: torch.Tensor) -> torch.Tensor:
    ax, ay, az = angles.unbind(-1)
    one, zero = torch.ones_like(ax), torch.zeros_like(ax)
    rx = torch.stack([one, zero, zero, zero, ax.cos(), -ax.sin(), zero, ax.sin(), ax.cos()], -1).view(-1, 3, 3)
    ry = torch.stack([ay.cos(), zero, ay.sin(), zero, one, zero, -ay.sin(), zero, ay.cos()], -1).view(-1, 3, 3)
    rz = torch.stack([az.cos(), -az.sin(), zero, az.sin(), az.cos(), zero, zero, zero, one], -1).view(-1, 3, 3)
    return rz @ ry @ rx


def random_affine(images: torch.Tensor, config: AugmentConfig, generator: torch.Generator) -> torch.Tensor:
    """Apply one random small affine per sample to a (B, C, D, H, W) stack (all channels alike)."""
    b = images.shape[0]
    dev = images.device
    angles = (torch.rand(b, 3, generator=generator) * 2 - 1) * math.radians(config.rotation_deg)
    scales = 1 + (torch.rand(b, 3, generator=generator) * 2 - 1) * config.scale
    shape = torch.tensor(images.shape[2:], dtype=torch.float32)
    shifts = (torch.rand(b, 3, generator=generator) * 2 - 1) * config.shift_vox * 2 / shape.flip(0)
    flips = torch.where(torch.rand(b, generator=generator) < config.flip_probability, -1.0, 1.0)
    matrix = _rotation(angles) * scales[:, None, :]
    matrix[:, :, 0] = matrix[:, :, 0] * flips[:, None]  # flip along x (left-right)
    theta = torch.cat([matrix, shifts[:, :, None]], dim=2).to(dev)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    radius = max(1, int(math.ceil(2.5 * sigma)))
    t = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    for dim in range(3):
        shape = [1, 1, 1, 1, 1]
        shape[2 + dim] = k.numel()
        pad = [0, 0, 0, 0, 0, 0]
        pad[2 * (2 - dim)] = pad[2 * (2 - dim) + 1] = radius
        x = F.conv3d(F.pad(x, pad, mode="replicate"), k.view(shape))
    return x


def degrade(
    images: torch.Tensor, masks: torch.Tensor, config: AugmentConfig, generator: torch.Generator
) -> torch.Tensor:
    """Input-only degradations of (B, 1, D, H, W) normalised images; zero stays outside ``masks``."""
    out = []
    for x, m in zip(images, masks):
        x = x[None]
        u = torch.rand(10, generator=generator).tolist()
        if u[0] < config.contrast_probability:
            # Shrink or stretch contrast around white matter (1.0): a grey/white ratio change.
            c = config.contrast_range[0] + u[1] * (config.contrast_range[1] - config.contrast_range[0])
            x = 1.0 + (x - 1.0) * c
        if u[2] < config.gamma_probability:
            g = config.gamma_range[0] + u[3] * (config.gamma_range[1] - config.gamma_range[0])
            x = x.clamp(min=0) ** g
        if u[4] < config.bias_probability:
            coarse = torch.randn(1, 1, 3, 3, 3, generator=generator).to(x.device) * config.bias_strength
            field = F.interpolate(coarse, size=x.shape[2:], mode="trilinear", align_corners=True)
            x = x * torch.exp(field)
        if u[5] < config.blur_probability:
            s = config.blur_sigma_vox[0] + u[6] * (config.blur_sigma_vox[1] - config.blur_sigma_vox[0])
            x = _gaussian_blur(x, s)
        elif u[8] < config.sharpen_probability:
            # Unsharp masking: crisper grey/white borders than IXI's, as other scanners give.
            a = config.sharpen_amount[0] + u[9] * (config.sharpen_amount[1] - config.sharpen_amount[0])
            x = x + a * (x - _gaussian_blur(x, 1.0))
        if u[7] < config.noise_probability:
            std = config.noise_std[0] + torch.rand(1, generator=generator).item() * (
                config.noise_std[1] - config.noise_std[0]
            )
            x = x + torch.randn(x.shape, generator=generator).to(x.device) * std
        out.append(x[0] * m)
    return torch.stack(out)
