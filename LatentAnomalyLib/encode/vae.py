"""The variational family: a Gaussian posterior per latent location, the posterior mean as the latent map.

The encoder's output is the posterior mean mu (so the latent map and every latent scorer are the
same as for the plain autoencoder). The log-variance is predicted from mu by a small per-location
network (two 1x1x1 convolutions): the posterior is then a function of the latent map alone, so
the per-location KL divergence to the N(0, I) prior, this family's own anomaly score, can be
computed at detection from the latent map detection already has (``scorers.family.VAEKLScorer``).
Training decodes a reparameterised sample mu + sigma * eps and adds the mean per-location KL.
"""

from __future__ import annotations

import torch
from torch import nn

from .conv_ae import ConvAutoEncoder

LOGVAR_RANGE = (-10.0, 6.0)


class LogVarHead(nn.Module):
    """mu (B, C, d, h, w) -> log sigma^2 of the same shape (per-location MLP, clamped)."""

    def __init__(self, channels: int, hidden: int | None = None):
        super().__init__()
        hidden = hidden or channels
        self.net = nn.Sequential(nn.Conv3d(channels, hidden, 1), nn.LeakyReLU(0.1), nn.Conv3d(hidden, channels, 1))
        nn.init.constant_(self.net[2].bias, -4.0)  # start with a narrow posterior: training begins close to the AE

    def forward(self, mu: torch.Tensor) -> torch.Tensor:
        return self.net(mu).clamp(*LOGVAR_RANGE)


def kl_map(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, sigma^2) || N(0, 1)) summed over channels: (B, C, ...) -> (B, 1, ...)."""
    return 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1.0).sum(dim=1, keepdim=True)


class VariationalAutoEncoder(ConvAutoEncoder):
    def __init__(
        self, channels: tuple[int, int, int] = (16, 32, 64), latent_channels: int = 16, input_sigma_vox: float = 0.0
    ):
        super().__init__(channels, latent_channels, input_sigma_vox)
        self.logvar = LogVarHead(latent_channels)
        # Under data parallelism: (this process's share, whole batch size). Each process then draws the noise
        # of the whole batch and keeps its share, so two processes sample what one process would.
        self.noise_share: tuple[slice, int] | None = None

    def kl(self, mu: torch.Tensor) -> torch.Tensor:
        """Per-location KL of the posterior whose mean is ``mu``."""
        return kl_map(mu, self.logvar(mu))

    def train_forward(
        self, x: torch.Tensor, zmask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        mu = self.encode(x)
        logvar = self.logvar(mu)
        if self.noise_share is None:
            noise = torch.randn_like(mu)
        else:
            share, batch = self.noise_share
            noise = torch.randn((batch, *mu.shape[1:]), dtype=mu.dtype, device=mu.device)[share]
        sample = mu + noise * (0.5 * logvar).exp()
        kl = kl_map(mu, logvar)
        return self.decode(sample), mu, {"kl": kl.mean()}
