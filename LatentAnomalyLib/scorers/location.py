"""Position-aware latent scoring: one small one-class model per latent location.

Brains are affinely aligned on the model grid, so the latent vector at cell p of a new scan is
compared with latent vectors of healthy brains at p. Each location's training set pools the cells
within ``radius`` of p (registration is never exact) from every training subject and its
left-right mirror (the caller adds mirrored scans under the same subject id), then keeps a random subsample of ``reference_size`` vectors: this is the
approximation that makes fitting take minutes and scoring a scan take well under a second.

Raw scores of one-class models are not comparable between places (the cortex varies more than
the white matter). Each location's score is therefore standardised by the spread of scores that
held-out healthy subjects get there (median and MAD), so one threshold means the same everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import numpy as np

from .base import EncodedScan, latent_grid_mask, upsample


@dataclass(frozen=True)
class LocationConfig:
    radius: int = 1
    reference_size: int = 256
    standardise: bool = True
    standardise_fraction: float = 0.3
    standardise_samples: int = 256
    stride: int = 4
    seed: int = 20261123


def neighbourhood_sample(
    latents: np.ndarray, positions: np.ndarray, count: int, radius: int, rng: np.random.Generator
) -> np.ndarray:
    """For each position, ``count`` random latent vectors from (subject, cell within radius).

    latents: (S, C, d, h, w); positions: (P, 3) cell indices. Returns (P, count, C) float32.
    """
    s, c, *grid = latents.shape
    p = len(positions)
    subjects = rng.integers(0, s, size=(p, count))
    offsets = rng.integers(-radius, radius + 1, size=(p, count, 3))
    cells = np.clip(positions[:, None, :] + offsets, 0, np.asarray(grid) - 1)
    moved = np.moveaxis(latents, 1, -1)  # (S, d, h, w, C)
    return moved[subjects, cells[..., 0], cells[..., 1], cells[..., 2]].astype(np.float32)


class LocationScorer:
    """Base class: subclasses implement ``_fit_local`` and ``_score_local`` on (P, ., C) arrays."""

    name: ClassVar[str] = "location"
    needs: ClassVar[frozenset[str]] = frozenset({"latent"})

    def __init__(self, config: LocationConfig | None = None, **params: Any):
        self.config = config or LocationConfig()
        self.params = params
        self.arrays: dict[str, np.ndarray] = {}

    # -- subclass hooks -------------------------------------------------------------------
    def _fit_local(self, reference: np.ndarray) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def _score_local(self, queries: np.ndarray, chunk: slice) -> np.ndarray:
        """Raw scores (P_chunk, Q) for queries (P_chunk, Q, C) at positions ``chunk``."""
        raise NotImplementedError

    # -- the shared machinery -------------------------------------------------------------
    def fit(self, scans: Sequence[EncodedScan]) -> None:
        cfg = self.config
        rng = np.random.default_rng(cfg.seed)
        latents = np.stack([s.latent for s in scans]).astype(np.float32)
        region = np.any([latent_grid_mask(s.mask, cfg.stride, 0.05) for s in scans], axis=0)
        positions = np.ascontiguousarray(np.argwhere(region), dtype=np.int32)
        # Hold out whole subjects (a scan and its mirror together) to measure each location's spread.
        subject_ids = [s.subject if s.subject is not None else str(i) for i, s in enumerate(scans)]
        unique = sorted(set(subject_ids))
        n_held = int(round(cfg.standardise_fraction * len(unique))) if cfg.standardise else 0
        held_subjects = set(rng.permutation(unique)[:n_held].tolist())
        held = np.asarray([i for i, sid in enumerate(subject_ids) if sid in held_subjects], dtype=int)
        kept = np.asarray([i for i, sid in enumerate(subject_ids) if sid not in held_subjects], dtype=int)
        reference = neighbourhood_sample(latents[kept], positions, cfg.reference_size, cfg.radius, rng)
        # Scores are computed from the float16 values the bundle stores, in fitting as in detection.
        reference = reference.astype(np.float16).astype(np.float32)
        self.arrays = {"positions": positions, "grid_shape": np.asarray(latents.shape[2:], dtype=np.int32)}
        self.arrays.update(self._fit_local(reference))
        if len(held):
            samples = neighbourhood_sample(latents[held], positions, cfg.standardise_samples, cfg.radius, rng)
            raw = self._score_all(samples)
            median = np.median(raw, axis=1)
            mad = 1.4826 * np.median(np.abs(raw - median[:, None]), axis=1)
            floor = max(float(np.median(mad)) * 0.1, 1e-6)
            self.arrays["center"] = median.astype(np.float32)
            self.arrays["spread"] = np.maximum(mad, floor).astype(np.float32)

    def _score_all(self, queries: np.ndarray, chunk_size: int = 512) -> np.ndarray:
        out = np.empty(queries.shape[:2], dtype=np.float32)
        for start in range(0, len(queries), chunk_size):
            chunk = slice(start, min(start + chunk_size, len(queries)))
            out[chunk] = self._score_local(queries[chunk], chunk)
        return out

    def score_latent_grid(self, latent: np.ndarray) -> np.ndarray:
        """Standardised score per latent cell (0 outside the fitted region)."""
        positions = self.arrays["positions"]
        queries = np.moveaxis(latent, 0, -1)[positions[:, 0], positions[:, 1], positions[:, 2]][:, None, :]
        raw = self._score_all(queries.astype(np.float32))[:, 0]
        if "center" in self.arrays:
            raw = (raw - self.arrays["center"]) / self.arrays["spread"]
        grid = np.zeros(tuple(int(v) for v in self.arrays["grid_shape"]), dtype=np.float32)
        grid[positions[:, 0], positions[:, 1], positions[:, 2]] = raw
        return grid

    def score(self, scan: EncodedScan) -> np.ndarray:
        assert scan.latent is not None, f"{self.name} needs the latent map"
        heat = upsample(self.score_latent_grid(scan.latent), scan.mask.shape)
        return (heat * scan.mask).astype(np.float32)

    def state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        return dict(self.arrays), {"scorer": self.name, "config": asdict(self.config), "params": self.params}

    @classmethod
    def from_state(cls, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> LocationScorer:
        config = dict(meta["config"])
        scorer = cls(LocationConfig(**config), **meta.get("params", {}))
        scorer.arrays = {k: np.asarray(v) for k, v in arrays.items()}
        return scorer


def squared_distances(queries: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """(P, Q, M) squared Euclidean distances between (P, Q, C) queries and (P, M, C) references."""
    q2 = np.einsum("pqc,pqc->pq", queries, queries)[:, :, None]
    r2 = np.einsum("pmc,pmc->pm", reference, reference)[:, None, :]
    cross = np.einsum("pqc,pmc->pqm", queries, reference)
    return np.maximum(q2 + r2 - 2.0 * cross, 0.0)
