"""Local Outlier Factor (Breunig et al. 2000) per location, in novelty mode.

The fitted state is plain arrays: each location's reference vectors, their k-distances and local
reachability densities. Scoring a new vector needs only distances to the references, which is
what scikit-learn's ``LocalOutlierFactor(novelty=True).score_samples`` computes; the tests check
that both agree.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from .location import LocationScorer, squared_distances


def _lof_state(reference: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """k-distance and local reachability density of each reference vector, shapes (P, M)."""
    d = np.sqrt(squared_distances(reference, reference))
    m = d.shape[-1]
    d[:, np.arange(m), np.arange(m)] = np.inf  # a point is not its own neighbour
    order = np.argsort(d, axis=2)[:, :, :k]
    nearest = np.take_along_axis(d, order, axis=2)
    k_distance = nearest[:, :, -1]
    reach = np.maximum(nearest, np.take_along_axis(k_distance[:, None, :].repeat(m, 1), order, axis=2))
    lrd = 1.0 / (reach.mean(axis=2) + 1e-10)
    return k_distance, lrd


class LOFScorer(LocationScorer):
    """Ratio of the neighbours' density to the query's: about 1 inside healthy clusters."""

    name: ClassVar[str] = "lof"

    def _fit_local(self, reference: np.ndarray) -> dict[str, np.ndarray]:
        k = int(self.params.get("k", 20))
        k_distance = np.empty(reference.shape[:2], dtype=np.float32)
        lrd = np.empty(reference.shape[:2], dtype=np.float32)
        for start in range(0, len(reference), 256):
            chunk = slice(start, start + 256)
            k_distance[chunk], lrd[chunk] = _lof_state(reference[chunk], k)
        return {"reference": reference.astype(np.float16), "k_distance": k_distance, "lrd": lrd}

    def _score_local(self, queries: np.ndarray, chunk: slice) -> np.ndarray:
        k = int(self.params.get("k", 20))
        d = np.sqrt(squared_distances(queries, self.arrays["reference"][chunk].astype(np.float32)))
        order = np.argpartition(d, k - 1, axis=2)[:, :, :k]
        nearest = np.take_along_axis(d, order, axis=2)
        k_distance = self.arrays["k_distance"][chunk]
        lrd = self.arrays["lrd"][chunk]
        neighbour_kd = np.take_along_axis(np.broadcast_to(k_distance[:, None, :], d.shape), order, axis=2)
        reach = np.maximum(nearest, neighbour_kd)
        lrd_query = 1.0 / (reach.mean(axis=2) + 1e-10)
        neighbour_lrd = np.take_along_axis(np.broadcast_to(lrd[:, None, :], d.shape), order, axis=2)
        return neighbour_lrd.mean(axis=2) / lrd_query
