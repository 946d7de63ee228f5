"""A fully convolutional 3D autoencoder whose latent map has one vector per 8 mm neighbourhood.

Two stride-2 stages take the 2 mm model grid to a stride-4 latent grid (20 x 24 x 20 for the
default box). Each latent vector therefore describes the neighbourhood its receptive field covers
(about 5 cm), at a fixed place in template space, which is what the position-aware one-class
scorers compare across brains. Building blocks are MONAI's (``Convolution``, ``ResidualUnit``).
"""

from __future__ import annotations

import torch
from monai.networks.blocks import Convolution, ResidualUnit
from torch import nn

NORM = ("instance", {"affine": True})
ACT = ("leakyrelu", {"negative_slope": 0.1})


def _conv(cin: int, cout: int, stride: int = 1, kernel: int = 3) -> nn.Module:
    return Convolution(3, cin, cout, strides=stride, kernel_size=kernel, norm=NORM, act=ACT)


def _res(channels: int) -> nn.Module:
    return ResidualUnit(3, channels, channels, subunits=2, norm=NORM, act=ACT)


class ConvEncoder(nn.Module):
    """Image (B, 1, D, H, W) -> latent map (B, C, D/4, H/4, W/4)."""

    def __init__(self, channels: tuple[int, int, int], latent_channels: int):
        super().__init__()
        c0, c1, c2 = channels
        self.body = nn.Sequential(
            _conv(1, c0, stride=2),
            _res(c0),
            _conv(c0, c1, stride=2),
            _res(c1),
            _conv(c1, c2),
            _res(c2),
        )
        self.head = nn.Conv3d(c2, latent_channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


class ConvDecoder(nn.Module):
    """Latent map -> reconstruction at the input resolution."""

    def __init__(self, channels: tuple[int, int, int], latent_channels: int):
        super().__init__()
        c0, c1, c2 = channels
        self.body = nn.Sequential(
            _conv(latent_channels, c2, kernel=1),
            _res(c2),
            nn.Upsample(scale_factor=2, mode="trilinear", align_corners=False),
            _conv(c2, c1),
            _res(c1),
            nn.Upsample(scale_factor=2, mode="trilinear", align_corners=False),
            _conv(c1, c0),
            nn.Conv3d(c0, 1, kernel_size=3, padding=1),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.body(z)


class ConvAutoEncoder(nn.Module):
    """Encoder + decoder; ``encode`` is all that detection needs besides the residual baseline."""

    def __init__(self, channels: tuple[int, int, int] = (16, 32, 64), latent_channels: int = 16):
        super().__init__()
        self.encoder = ConvEncoder(channels, latent_channels)
        self.decoder = ConvDecoder(channels, latent_channels)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.encode(x)
        return self.decode(z), z
