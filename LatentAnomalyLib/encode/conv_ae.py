"""A fully convolutional 3D autoencoder whose latent map has one vector per 8 mm neighbourhood.

Two stride-2 stages take the 2 mm model grid to a stride-4 latent grid (20 x 24 x 20 for the
default box). Each latent vector therefore describes the neighbourhood its receptive field covers
(about 5 cm), at a fixed place in template space, which is what the position-aware one-class
scorers compare across brains. Building blocks are MONAI's ``Convolution`` and ``ResidualUnit``,
as rebuilt in plain torch by :mod:`.blocks` (same layers, weights and outputs, without importing MONAI).
"""

from __future__ import annotations

import torch
from torch import nn

from .blocks import Convolution, ResidualUnit

SLOPE = 0.1  # LeakyReLU negative slope; every convolution is followed by an affine instance norm


def _conv(cin: int, cout: int, stride: int = 1, kernel: int = 3) -> nn.Module:
    return Convolution(cin, cout, kernel_size=kernel, stride=stride, negative_slope=SLOPE)


def _res(channels: int) -> nn.Module:
    return ResidualUnit(channels, subunits=2, negative_slope=SLOPE)


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


class GaussianPrefilter(nn.Module):
    """Fixed separable Gaussian low-pass applied to the input before encoding.

    Scanners differ most in what they put at the highest spatial frequencies (noise texture,
    edge sharpness); healthy IXI scans all come from one scanner. Band-limiting every input the
    same way, in training and detection alike, removes most of that difference before the
    encoder can learn it (measured on IXI validation scans: unsharp-masked copies went from up to
    17% flagged voxels to the clean scans' level).
    """

    def __init__(self, sigma: float):
        super().__init__()
        self.sigma = float(sigma)
        radius = max(1, int(round(2.5 * sigma))) if sigma > 0 else 0
        t = torch.arange(-radius, radius + 1, dtype=torch.float32)
        kernel = torch.exp(-0.5 * (t / max(sigma, 1e-6)) ** 2)
        self.register_buffer("kernel", kernel / kernel.sum(), persistent=False)
        self.radius = radius

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.sigma <= 0:
            return x
        k = self.kernel.to(dtype=x.dtype, device=x.device)
        for dim in range(3):
            shape = [1, 1, 1, 1, 1]
            shape[2 + dim] = k.numel()
            pad = [0, 0, 0, 0, 0, 0]
            pad[2 * (2 - dim)] = pad[2 * (2 - dim) + 1] = self.radius
            x = nn.functional.conv3d(nn.functional.pad(x, pad, mode="replicate"), k.view(shape))
        return x


class ConvAutoEncoder(nn.Module):
    """Encoder + decoder; ``encode`` is all that detection needs besides the residual baseline.

    The decoder reconstructs the prefiltered input, which is therefore the residual's reference.
    """

    def __init__(
        self, channels: tuple[int, int, int] = (16, 32, 64), latent_channels: int = 16, input_sigma_vox: float = 0.0
    ):
        super().__init__()
        self.prefilter = GaussianPrefilter(input_sigma_vox)
        self.encoder = ConvEncoder(channels, latent_channels)
        self.decoder = ConvDecoder(channels, latent_channels)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(self.prefilter(x))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.encode(x)
        return self.decode(z), z

    def train_forward(
        self, x: torch.Tensor, zmask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """(reconstruction, latent, family loss terms) for one training batch; the plain autoencoder has none."""
        recon, z = self(x)
        return recon, z, {}

    def after_training(self, images: torch.Tensor, masks: torch.Tensor, stride: int) -> None:
        """Hook run once on the training set after the last epoch (families with fitted statistics use it)."""
        return None
