"""The vector-quantised family (VQ-VAE, van den Oord et al. 2017) with an EMA-updated codebook.

The decoder sees each latent vector replaced by its nearest code (straight-through gradients to
the encoder, a commitment term pulling encoder outputs towards their codes). The codebook is
not trained by gradients: each code moves to the exponential moving average of the brain-cell
vectors assigned to it (Laplace-smoothed counts, as in the paper's appendix); codes unused for a
whole batch restart at random encoder outputs of that batch. Under ``torch.distributed`` the
counts and sums are all-reduced and initial and restarted codes come from the first process's
share of the batch, so every process holds the same codebook.

For detection the latent map is the encoder output *before* quantisation (the continuous vector
the latent scorers need), and this family's own score is its distance to the nearest code
(``scorers.family.VQDistanceScorer``). ``decode`` quantises first, so reconstructions (the
residual baseline) are the model's own.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn

from .conv_ae import ConvAutoEncoder


def _all_reduce(tensor: torch.Tensor) -> torch.Tensor:
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(tensor)
    return tensor


def _from_first_process(tensor: torch.Tensor) -> torch.Tensor:
    """Rank 0's values everywhere (code initialisation and restarts: real data vectors, not averages)."""
    if dist.is_available() and dist.is_initialized():
        dist.broadcast(tensor, src=0)
    return tensor


class EMACodebook(nn.Module):
    """K codes of dimension C; buffers only (``embed``, ``cluster_size``, ``embed_sum``, ``initialised``)."""

    def __init__(self, size: int, dim: int, decay: float = 0.99, eps: float = 1e-5):
        super().__init__()
        self.size, self.dim, self.decay, self.eps = size, dim, decay, eps
        self.register_buffer("embed", torch.randn(size, dim) * 0.1)
        self.register_buffer("cluster_size", torch.zeros(size))
        self.register_buffer("embed_sum", torch.zeros(size, dim))
        self.register_buffer("initialised", torch.zeros((), dtype=torch.bool))

    def nearest(self, flat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(index, squared distance) of the nearest code for each row of ``flat`` (N, C)."""
        d = flat.pow(2).sum(1, keepdim=True) - 2 * flat @ self.embed.t() + self.embed.pow(2).sum(1)[None]
        dist2, index = d.min(dim=1)
        return index, dist2.clamp(min=0)

    @torch.no_grad()
    def update(self, flat: torch.Tensor, index: torch.Tensor) -> None:
        """One EMA step from the vectors ``flat`` (N, C) assigned to codes ``index``."""
        if len(flat) == 0 and _world() == 1:
            return
        if not bool(self.initialised):
            picks = torch.randint(0, len(flat), (self.size,), device=flat.device)
            self.embed.copy_(_from_first_process(flat[picks].clone()))
            self.embed_sum.copy_(self.embed)
            self.cluster_size.fill_(1.0)
            self.initialised.fill_(True)
        onehot = torch.zeros(len(flat), self.size, device=flat.device, dtype=flat.dtype)
        onehot.scatter_(1, index[:, None], 1.0)
        counts = _all_reduce(onehot.sum(0))
        sums = _all_reduce(onehot.t() @ flat)
        self.cluster_size.mul_(self.decay).add_(counts, alpha=1 - self.decay)
        self.embed_sum.mul_(self.decay).add_(sums, alpha=1 - self.decay)
        total = self.cluster_size.sum()
        smoothed = (self.cluster_size + self.eps) / (total + self.size * self.eps) * total
        self.embed.copy_(self.embed_sum / smoothed[:, None])
        dead = counts == 0
        if bool(dead.any()) and len(flat):
            picks = torch.randint(0, len(flat), (int(dead.sum()),), device=flat.device)
            restart = torch.zeros_like(self.embed)
            restart[dead] = flat[picks]
            restart = _from_first_process(restart)
            self.embed[dead] = restart[dead]
            self.embed_sum[dead] = restart[dead]
            self.cluster_size[dead] = 1.0


def _world() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def _flatten(z: torch.Tensor) -> torch.Tensor:
    return z.permute(0, 2, 3, 4, 1).reshape(-1, z.shape[1])


class VQAutoEncoder(ConvAutoEncoder):
    def __init__(
        self,
        channels: tuple[int, int, int] = (16, 32, 64),
        latent_channels: int = 16,
        input_sigma_vox: float = 0.0,
        codebook_size: int = 256,
        decay: float = 0.99,
    ):
        super().__init__(channels, latent_channels, input_sigma_vox)
        self.codebook = EMACodebook(codebook_size, latent_channels, decay)

    def quantise(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(quantised map, squared distance to the nearest code (B, 1, ...)) of a latent map."""
        flat = _flatten(z)
        index, dist2 = self.codebook.nearest(flat)
        q = self.codebook.embed[index].view(z.shape[0], *z.shape[2:], z.shape[1]).permute(0, 4, 1, 2, 3)
        return q, dist2.view(z.shape[0], 1, *z.shape[2:])

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.quantise(z)[0])

    def train_forward(
        self, x: torch.Tensor, zmask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        z = self.encode(x)
        flat = _flatten(z)
        brain = zmask.permute(0, 2, 3, 4, 1).reshape(-1)
        if self.training:
            self.codebook.update(flat.detach()[brain], self.codebook.nearest(flat.detach()[brain])[0])
        q = self.quantise(z)[0].detach()
        commitment = (z - q).pow(2).mean()
        straight = z + (q - z).detach()
        return self.decoder(straight), z, {"commitment": commitment}
