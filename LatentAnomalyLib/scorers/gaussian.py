"""Mahalanobis distance to a Gaussian fitted per location (Ledoit-Wolf shrinkage)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from sklearn.covariance import ledoit_wolf

from .location import LocationScorer


class GaussianScorer(LocationScorer):
    """The cheapest latent model: one mean and one shrunk covariance per location."""

    name: ClassVar[str] = "gaussian"

    def _fit_local(self, reference: np.ndarray) -> dict[str, np.ndarray]:
        p, _, c = reference.shape
        means = reference.mean(axis=1)
        precisions = np.empty((p, c, c), dtype=np.float32)
        for i in range(p):
            covariance, _ = ledoit_wolf(reference[i] - means[i])
            precisions[i] = np.linalg.inv(covariance + 1e-6 * np.eye(c))
        return {"mean": means.astype(np.float32), "precision": precisions}

    def _score_local(self, queries: np.ndarray, chunk: slice) -> np.ndarray:
        diff = queries - self.arrays["mean"][chunk][:, None, :]
        d2 = np.einsum("pqc,pcd,pqd->pq", diff, self.arrays["precision"][chunk], diff)
        return np.sqrt(np.maximum(d2, 0.0))
