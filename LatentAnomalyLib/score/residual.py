"""Baseline: the autoencoder's reconstruction residual, through the same interface as latent scorers.

Kept to show what scoring in latent space adds: the residual misses lesions whose intensities lie
within the range of normal tissue (Meissen et al., MIDL 2022). Absolute residual, smoothed with a
Gaussian of ``sigma`` voxels, standardised per voxel by its spread on held-out healthy scans so
that naturally hard-to-reconstruct places (cortex, vessels) do not dominate.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from scipy import ndimage

from .base import EncodedScan


class ResidualScorer:
    name: ClassVar[str] = "residual"
    needs: ClassVar[frozenset[str]] = frozenset({"reconstruction"})

    def __init__(self, sigma: float = 1.0, standardise: bool = True):
        self.sigma = sigma
        self.standardise = standardise
        self.arrays: dict[str, np.ndarray] = {}

    def _raw(self, scan: EncodedScan) -> np.ndarray:
        assert scan.reconstruction is not None, "the residual scorer needs the reconstruction"
        reference = scan.filtered if scan.filtered is not None else scan.image
        residual = np.abs(scan.reconstruction - reference) * scan.mask
        return ndimage.gaussian_filter(residual.astype(np.float32), self.sigma)

    def fit(self, scans: Sequence[EncodedScan]) -> None:
        if not self.standardise:
            return
        raw = np.stack([self._raw(s) for s in scans])
        self.arrays = {
            "center": np.median(raw, axis=0).astype(np.float16),
            "spread": np.maximum(1.4826 * np.median(np.abs(raw - np.median(raw, axis=0)), axis=0), 0.01).astype(
                np.float16
            ),
        }

    def score(self, scan: EncodedScan) -> np.ndarray:
        raw = self._raw(scan)
        if self.arrays:
            raw = (raw - self.arrays["center"].astype(np.float32)) / self.arrays["spread"].astype(np.float32)
        return (raw * scan.mask).astype(np.float32)

    def state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        return dict(self.arrays), {
            "scorer": self.name,
            "params": {"sigma": self.sigma, "standardise": self.standardise},
        }

    @classmethod
    def from_state(cls, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> ResidualScorer:
        scorer = cls(**meta.get("params", {}))
        scorer.arrays = {k: np.asarray(v) for k, v in arrays.items()}
        return scorer
