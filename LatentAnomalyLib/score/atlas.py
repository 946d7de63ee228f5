"""Baseline: voxel-wise z-score against the registered healthy training scans (statistical atlas).

The classic baseline the latent method has to beat: after the same preprocessing (registration,
bias correction, normalisation), each model-grid voxel is compared with the healthy mean and
standard deviation at that voxel. ``direction`` picks |z| ("abs"), hypo- ("low") or hyper-
intensity ("high"). It shares the interface (and the calibration) of the latent scorers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from scipy import ndimage

from .base import EncodedScan

DIRECTIONS = ("abs", "low", "high")


class AtlasScorer:
    name: ClassVar[str] = "atlas"
    needs: ClassVar[frozenset[str]] = frozenset({"image"})

    def __init__(self, direction: str = "abs", sigma: float = 1.0, min_std: float = 0.05):
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}")
        self.direction = direction
        self.sigma = sigma
        self.min_std = min_std
        self.arrays: dict[str, np.ndarray] = {}

    def fit(self, scans: Sequence[EncodedScan]) -> None:
        stack = np.stack([s.image for s in scans]).astype(np.float32)
        self.arrays = {
            "mean": ndimage.gaussian_filter(stack.mean(axis=0), self.sigma).astype(np.float16),
            "std": (ndimage.gaussian_filter(stack.std(axis=0), self.sigma) + self.min_std).astype(np.float16),
        }

    def score(self, scan: EncodedScan) -> np.ndarray:
        z = (scan.image - self.arrays["mean"].astype(np.float32)) / self.arrays["std"].astype(np.float32)
        if self.direction == "abs":
            z = np.abs(z)
        elif self.direction == "low":
            z = -z
        return (z * scan.mask).astype(np.float32)

    def state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        params = {"direction": self.direction, "sigma": self.sigma, "min_std": self.min_std}
        return dict(self.arrays), {"scorer": self.name, "params": params}

    @classmethod
    def from_state(cls, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> AtlasScorer:
        scorer = cls(**meta.get("params", {}))
        scorer.arrays = {k: np.asarray(v) for k, v in arrays.items()}
        return scorer
