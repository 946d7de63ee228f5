"""k-nearest-neighbour distance to the healthy latent vectors of the same location (whitened)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from .location import LocationScorer, squared_distances


class KNNScorer(LocationScorer):
    """Mean distance to the ``k`` nearest healthy vectors: large where nothing healthy looks alike."""

    name: ClassVar[str] = "knn"

    def _score_local(self, queries: np.ndarray, chunk: slice) -> np.ndarray:
        k = int(self.params.get("k", 10))
        d2 = squared_distances(queries, self.space.reference(chunk))
        nearest = np.partition(d2, k - 1, axis=2)[:, :, :k]
        return np.sqrt(nearest).mean(axis=2)
