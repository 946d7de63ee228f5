"""The Gaussian-mixture family, DAGMM-style (Zong et al., ICLR 2018): a mixture over latent vectors, learned jointly.

An estimation network (two 1x1x1 convolutions and a softmax) gives every latent vector soft
memberships gamma over K components. On each batch the mixture's weights, means and covariances
are the gamma-weighted statistics of the batch's brain-cell vectors (DAGMM's estimator), and the
loss adds the mean sample energy E(z) = -log sum_k phi_k N(z | mu_k, Sigma_k) and DAGMM's penalty
on small covariance diagonals (which stops the energy from collapsing the latent space). Unlike
DAGMM the mixture is over the latent vector only (no reconstruction-error features), so the energy
is a function of the latent map that detection already computes; the name ``gmvae`` is the
issue's, the model is deterministic (no sampling).

After training, ``after_training`` fits the mixture once on all training scans (buffers
``mix_weight``, ``mix_mean``, ``mix_cov``); ``scorers.family.GMMEnergyScorer`` scores with them.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .conv_ae import ConvAutoEncoder

COV_EPS = 1e-3


def mixture_statistics(z: torch.Tensor, gamma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(phi (K,), mu (K, C), Sigma (K, C, C)) from vectors (N, C) and memberships (N, K)."""
    total = gamma.sum(0) + 1e-8
    phi = total / len(z)
    mu = (gamma.t() @ z) / total[:, None]
    centred = z[None] - mu[:, None]  # (K, N, C)
    cov = torch.einsum("kn,knc,knd->kcd", gamma.t(), centred, centred) / total[:, None, None]
    return phi, mu, cov + COV_EPS * torch.eye(z.shape[1], device=z.device, dtype=z.dtype)


def energy(z: torch.Tensor, phi: torch.Tensor, mu: torch.Tensor, cov: torch.Tensor) -> torch.Tensor:
    """Sample energy -log sum_k phi_k N(z | mu_k, Sigma_k) of each row of ``z`` (N, C)."""
    chol = torch.linalg.cholesky(cov)  # (K, C, C)
    diff = (z[None] - mu[:, None]).transpose(1, 2)  # (K, C, N)
    solved = torch.linalg.solve_triangular(chol, diff, upper=False)
    maha = solved.pow(2).sum(1)  # (K, N)
    logdet = 2 * torch.log(torch.diagonal(chol, dim1=1, dim2=2)).sum(1)  # (K,)
    log_norm = -0.5 * (maha + logdet[:, None] + z.shape[1] * math.log(2 * math.pi))
    return -torch.logsumexp(torch.log(phi + 1e-12)[:, None] + log_norm, dim=0)


class MixtureAutoEncoder(ConvAutoEncoder):
    def __init__(
        self,
        channels: tuple[int, int, int] = (16, 32, 64),
        latent_channels: int = 16,
        input_sigma_vox: float = 0.0,
        components: int = 4,
        hidden: int = 32,
    ):
        super().__init__(channels, latent_channels, input_sigma_vox)
        self.estimation = nn.Sequential(
            nn.Conv3d(latent_channels, hidden, 1), nn.Tanh(), nn.Conv3d(hidden, components, 1)
        )
        self.register_buffer("mix_weight", torch.full((components,), 1.0 / components))
        self.register_buffer("mix_mean", torch.zeros(components, latent_channels))
        self.register_buffer("mix_cov", torch.eye(latent_channels).repeat(components, 1, 1))

    def memberships(self, z: torch.Tensor) -> torch.Tensor:
        """Soft memberships (B, K, d, h, w) of every latent vector."""
        return torch.softmax(self.estimation(z), dim=1)

    def train_forward(
        self, x: torch.Tensor, zmask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        recon, z = self(x)
        brain = zmask.permute(0, 2, 3, 4, 1).reshape(-1)
        flat = z.permute(0, 2, 3, 4, 1).reshape(-1, z.shape[1])[brain]
        gamma = self.memberships(z).permute(0, 2, 3, 4, 1).reshape(-1, self.mix_weight.numel())[brain]
        phi, mu, cov = mixture_statistics(flat, gamma)
        sample_energy = energy(flat, phi, mu, cov).mean()
        penalty = (1.0 / torch.diagonal(cov, dim1=1, dim2=2)).sum()
        return recon, z, {"energy": sample_energy, "covariance": penalty}

    @torch.no_grad()
    def after_training(self, images: torch.Tensor, masks: torch.Tensor, stride: int) -> None:
        """Fit the mixture on every brain-cell latent vector of the training scans (in eval mode)."""
        from .siamese import latent_mask

        vectors, gammas = [], []
        for start in range(0, len(images), 4):
            z = self.encode(images[start : start + 4])
            brain = latent_mask(masks[start : start + 4], stride).permute(0, 2, 3, 4, 1).reshape(-1)
            vectors.append(z.permute(0, 2, 3, 4, 1).reshape(-1, z.shape[1])[brain])
            gammas.append(self.memberships(z).permute(0, 2, 3, 4, 1).reshape(-1, self.mix_weight.numel())[brain])
        phi, mu, cov = mixture_statistics(torch.cat(vectors).double(), torch.cat(gammas).double())
        self.mix_weight.copy_(phi.float())
        self.mix_mean.copy_(mu.float())
        self.mix_cov.copy_(cov.float())
