"""The siamese family: healthy brains should get the same latent code at the same place.

After affine registration, location p holds comparable anatomy in every healthy brain. Pulling
the codes of two different subjects together at each p (invariance) shrinks the healthy spread
that the per-location one-class scorers must learn, so a lesion stands out further from it
(Alaverdyan et al., MedIA 2020). A variance floor per channel (as in VICReg) stops the trivial
solution where every code collapses to a constant. The network is the plain autoencoder's (same
layers and state-dict keys); only the training objective differs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .conv_ae import ConvAutoEncoder


def latent_mask(masks: torch.Tensor, stride: int) -> torch.Tensor:
    """Brain mask (B, 1, D, H, W) pooled to the latent grid: True where most of a cell is brain."""
    return F.avg_pool3d(masks.float(), stride) > 0.5


def siamese_losses(z: torch.Tensor, zmask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(invariance, variance) terms for a batch whose consecutive samples form pairs."""
    za, zb = z[0::2], z[1::2]
    n = min(len(za), len(zb))
    za, zb = za[:n], zb[:n]
    both = (zmask[0::2][:n] & zmask[1::2][:n]).float()
    invariance = (((za - zb) ** 2).mean(dim=1, keepdim=True) * both).sum() / both.sum().clamp(min=1)
    flat = z.permute(1, 0, 2, 3, 4)[:, zmask[:, 0]]  # (C, locations in brain)
    std = torch.sqrt(flat.var(dim=1) + 1e-4)
    variance = F.relu(1.0 - std).mean()
    return invariance, variance


class SiameseAutoEncoder(ConvAutoEncoder):
    """:class:`ConvAutoEncoder` trained with the invariance and variance terms on consecutive pairs of a batch."""

    def __init__(
        self,
        channels: tuple[int, int, int] = (16, 32, 64),
        latent_channels: int = 16,
        input_sigma_vox: float = 0.0,
        stride: int = 4,
    ):
        super().__init__(channels, latent_channels, input_sigma_vox)
        self.stride = stride

    def train_forward(
        self, x: torch.Tensor, zmask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        recon, z = self(x)
        invariance, variance = siamese_losses(z, zmask)
        return recon, z, {"invariance": invariance, "variance": variance}
