"""Local Outlier Factor (Breunig et al. 2000) per location, in novelty mode, on whitened latents.

The fitted state is plain arrays: the k-distance and local reachability density of each of the
location's reference vectors (which live in the shared latent space). Scoring a new vector needs
only its distances to the references, which is what scikit-learn's
``LocalOutlierFactor(novelty=True).score_samples`` computes; the tests check that both agree.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from .location import LocationScorer, squared_distances


def lof_state(reference: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """k-distance and local reachability density of each reference vector, shapes (P, M)."""
    d = np.sqrt(squared_distances(reference, reference))
    m = d.shape[-1]
    d[:, np.arange(m), np.arange(m)] = np.inf  # a point is not its own neighbour
    order = np.argsort(d, axis=2)[:, :, :k]
    nearest = np.take_along_axis(d, order, axis=2)
    k_distance = nearest[:, :, -1]
    neighbour_kd = np.take_along_axis(np.broadcast_to(k_distance[:, None, :], d.shape), order, axis=2)
    reach = np.maximum(nearest, neighbour_kd)
    lrd = 1.0 / (reach.mean(axis=2) + 1e-10)
    return k_distance, lrd


def lof_score(distances: np.ndarray, k_distance: np.ndarray, lrd: np.ndarray, k: int) -> np.ndarray:
    """LOF of queries given their distances (P, Q, M) to references with (P, M) k-distance and lrd."""
    order = np.argpartition(distances, k - 1, axis=2)[:, :, :k]
    nearest = np.take_along_axis(distances, order, axis=2)
    neighbour_kd = np.take_along_axis(np.broadcast_to(k_distance[:, None, :], distances.shape), order, axis=2)
    lrd_query = 1.0 / (np.maximum(nearest, neighbour_kd).mean(axis=2) + 1e-10)
    neighbour_lrd = np.take_along_axis(np.broadcast_to(lrd[:, None, :], distances.shape), order, axis=2)
    return neighbour_lrd.mean(axis=2) / lrd_query


class LOFScorer(LocationScorer):
    """Ratio of the neighbours' density to the query's: about 1 inside healthy clusters."""

    name: ClassVar[str] = "lof"

    def _fit_local(self) -> dict[str, np.ndarray]:
        k = int(self.params.get("k", 10))
        reference = self.space.reference()
        k_distance = np.empty(reference.shape[:2], dtype=np.float32)
        lrd = np.empty(reference.shape[:2], dtype=np.float32)
        for start in range(0, len(reference), 256):
            chunk = slice(start, start + 256)
            k_distance[chunk], lrd[chunk] = lof_state(reference[chunk], k)
        return {"k_distance": k_distance, "lrd": lrd}

    def _score_local(self, queries: np.ndarray, chunk: slice) -> np.ndarray:
        k = int(self.params.get("k", 10))
        d = np.sqrt(squared_distances(queries, self.space.reference(chunk)))
        return lof_score(d, self.arrays["k_distance"][chunk], self.arrays["lrd"][chunk], k)
