"""Mahalanobis distance to the Gaussian fitted per location (Ledoit-Wolf shrinkage).

The latent space's whitening *is* this Gaussian: the distance is the norm of the whitened vector.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from .location import LocationScorer


class GaussianScorer(LocationScorer):
    """The cheapest latent model: one mean and one shrunk covariance per location."""

    name: ClassVar[str] = "gaussian"

    def _score_local(self, queries: np.ndarray, chunk: slice) -> np.ndarray:
        return np.sqrt(np.einsum("pqc,pqc->pq", queries, queries))
