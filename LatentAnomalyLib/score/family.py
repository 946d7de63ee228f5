"""Each encoder family's own anomaly score, through the scorer interface (so ``detect --scorer`` runs it).

- ``vae_kl``      (family ``vae``):   per-location KL(q(z|x) || N(0, I)) of the posterior the latent mean implies
- ``vq_distance`` (family ``vqvae``): distance from the latent vector to its nearest codebook entry
- ``gmm_energy``  (family ``gmvae``): sample energy -log p(z) under the jointly learned Gaussian mixture

All three are functions of the raw latent map alone: the scorer holds the family's small arrays
(log-variance head, codebook, mixture) copied from the encoder at training time, plus the latent
standardisation, which it undoes (scorers receive standardised latents). With ``standardise``
(the default) each latent location's score is then standardised by its median and MAD over the
healthy training scans, as the residual baseline does per voxel, so places that are naturally
far from the model do not dominate. The latent-grid map is upsampled to the model grid.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch

from .base import EncodedScan, upsample

ENCODER_KEYS = {"vae": "logvar.", "vqvae": "codebook.embed", "gmvae": "mix_"}


class FamilyScorer:
    """Base: ``attach`` copies the family's arrays from a trained encoder, ``fit`` the per-location spread."""

    name: ClassVar[str] = ""
    family: ClassVar[str] = ""
    needs: ClassVar[frozenset[str]] = frozenset({"latent"})

    def __init__(self, standardise: bool = True):
        self.standardise = standardise
        self.arrays: dict[str, np.ndarray] = {}

    def attach(self, encoder: torch.nn.Module, mean: np.ndarray, std: np.ndarray) -> None:
        """Copy what scoring needs from ``encoder`` (its family must be this scorer's) and the latent statistics."""
        prefix = ENCODER_KEYS[self.family]
        state = {k: v.detach().cpu().float().numpy() for k, v in encoder.state_dict().items() if k.startswith(prefix)}
        if not state:
            raise ValueError(f"scorer {self.name} needs an encoder of family {self.family!r}")
        self.arrays = {f"encoder.{k}": v for k, v in state.items()}
        self.arrays["latent_mean"] = np.asarray(mean, np.float32)
        self.arrays["latent_std"] = np.asarray(std, np.float32)

    def _raw_latent(self, scan: EncodedScan) -> torch.Tensor:
        assert scan.latent is not None, f"the {self.name} scorer needs the latent map"
        mean, std = self.arrays["latent_mean"], self.arrays["latent_std"]
        z = scan.latent * std[:, None, None, None] + mean[:, None, None, None]
        return torch.from_numpy(np.ascontiguousarray(z, dtype=np.float32))

    def latent_map(self, z: torch.Tensor) -> np.ndarray:
        """The family score per latent location of a raw latent map (C, d, h, w) -> (d, h, w)."""
        raise NotImplementedError

    def _grid_score(self, scan: EncodedScan) -> np.ndarray:
        with torch.inference_mode():
            grid = self.latent_map(self._raw_latent(scan)).astype(np.float32)
        if "center" in self.arrays:
            grid = (grid - self.arrays["center"]) / self.arrays["spread"]
        return grid

    def fit(self, scans: Sequence[EncodedScan]) -> None:
        if not self.arrays:
            raise ValueError(f"scorer {self.name}: call attach(encoder, mean, std) before fit")
        if not self.standardise:
            return
        grids = np.stack([self._grid_score(s) for s in scans])
        center = np.median(grids, axis=0)
        spread = 1.4826 * np.median(np.abs(grids - center), axis=0)
        floor = max(float(np.median(spread)) * 0.1, 1e-6)
        self.arrays["center"] = center.astype(np.float32)
        self.arrays["spread"] = np.maximum(spread, floor).astype(np.float32)

    def score(self, scan: EncodedScan) -> np.ndarray:
        return (upsample(self._grid_score(scan), scan.mask.shape) * scan.mask).astype(np.float32)

    def state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        return dict(self.arrays), {"scorer": self.name, "params": {"standardise": self.standardise}}

    @classmethod
    def from_state(cls, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> FamilyScorer:
        scorer = cls(**meta.get("params", {}))
        scorer.arrays = {k: np.asarray(v) for k, v in arrays.items()}
        return scorer


class VAEKLScorer(FamilyScorer):
    name: ClassVar[str] = "vae_kl"
    family: ClassVar[str] = "vae"

    def latent_map(self, z: torch.Tensor) -> np.ndarray:
        from ..encode.vae import LogVarHead, kl_map

        head = LogVarHead(z.shape[0])
        prefix = "encoder.logvar."
        head.load_state_dict(
            {k[len(prefix) :]: torch.from_numpy(v) for k, v in self.arrays.items() if k.startswith(prefix)}
        )
        return kl_map(z[None], head(z[None]))[0, 0].numpy()


class VQDistanceScorer(FamilyScorer):
    name: ClassVar[str] = "vq_distance"
    family: ClassVar[str] = "vqvae"

    def latent_map(self, z: torch.Tensor) -> np.ndarray:
        codes = torch.from_numpy(self.arrays["encoder.codebook.embed"])
        flat = z.reshape(z.shape[0], -1).t()
        d2 = flat.pow(2).sum(1, keepdim=True) - 2 * flat @ codes.t() + codes.pow(2).sum(1)[None]
        return d2.min(dim=1).values.clamp(min=0).sqrt().reshape(z.shape[1:]).numpy()


class GMMEnergyScorer(FamilyScorer):
    name: ClassVar[str] = "gmm_energy"
    family: ClassVar[str] = "gmvae"

    def latent_map(self, z: torch.Tensor) -> np.ndarray:
        from ..encode.gmvae import energy

        phi, mu, cov = (torch.from_numpy(self.arrays[f"encoder.mix_{k}"]).double() for k in ("weight", "mean", "cov"))
        flat = z.reshape(z.shape[0], -1).t().double()
        return energy(flat, phi, mu, cov).reshape(z.shape[1:]).float().numpy()


FAMILY_SCORERS: dict[str, type[FamilyScorer]] = {
    cls.family: cls for cls in (VAEKLScorer, VQDistanceScorer, GMMEnergyScorer)
}
