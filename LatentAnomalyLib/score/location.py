"""Position-aware latent scoring: one small one-class model per latent location.

Brains are affinely aligned on the model grid, so the latent vector at cell p of a new scan is
compared with latent vectors of healthy brains at p. Each location's training set pools the cells
within ``radius`` of p (registration is never exact) from every training subject and its
left-right mirror (the caller adds mirrored scans under the same subject id).

:class:`LatentSpace` holds what all latent scorers share, once per bundle:
- a per-location whitening (mean and Cholesky factor of a Ledoit-Wolf precision): in whitened
  coordinates the healthy spread at p is isotropic, so Euclidean kernels and neighbour distances
  follow the anatomy's own variability instead of the raw channel scales (measured on synthetic
  lesions in IXI validation scans: voxel AUPRC 0.20 -> 0.44 for the OC-SVM, 0.11 -> 0.42 for LOF);
- a random subsample of ``reference_size`` whitened healthy vectors per location (the
  approximation that makes fitting take minutes and scoring a scan well under a second);
- held-out subjects' vectors (fitting only, not stored) from which each scorer learns the spread of
  its healthy scores at p. Raw scores of one-class models are not comparable between places (the
  cortex varies more than the white matter); standardising by the held-out median and MAD makes
  one threshold mean the same everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import numpy as np

from .. import DEFAULT_SEED
from .base import EncodedScan, latent_grid_mask, upsample


@dataclass(frozen=True)
class LocationConfig:
    radius: int = 1
    reference_size: int = 64
    whiten_size: int = 512
    standardise_fraction: float = 0.3
    standardise_samples: int = 256
    stride: int = 4
    seed: int = DEFAULT_SEED


def neighbourhood_sample(
    latents: np.ndarray, positions: np.ndarray, count: int, radius: int, rng: np.random.Generator
) -> np.ndarray:
    """For each position, ``count`` random latent vectors from (subject, cell within radius).

    latents: (S, C, d, h, w); positions: (P, 3) cell indices. Returns (P, count, C) float32.
    """
    s, _, *grid = latents.shape
    p = len(positions)
    subjects = rng.integers(0, s, size=(p, count))
    offsets = rng.integers(-radius, radius + 1, size=(p, count, 3))
    cells = np.clip(positions[:, None, :] + offsets, 0, np.asarray(grid) - 1)
    moved = np.moveaxis(latents, 1, -1)  # (S, d, h, w, C)
    return moved[subjects, cells[..., 0], cells[..., 1], cells[..., 2]].astype(np.float32)


def squared_distances(queries: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """(P, Q, M) squared Euclidean distances between (P, Q, C) queries and (P, M, C) references."""
    q2 = np.einsum("pqc,pqc->pq", queries, queries)[:, :, None]
    r2 = np.einsum("pmc,pmc->pm", reference, reference)[:, None, :]
    cross = np.einsum("pqc,pmc->pqm", queries, reference)
    return np.maximum(q2 + r2 - 2.0 * cross, 0.0)


def split_held_out(
    scans: Sequence[EncodedScan], fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Indices (held, kept): whole subjects (a scan and its mirror together) held out to measure spread.

    The permutation is the first draw of a fresh ``default_rng(seed)`` in :meth:`LatentSpace.fit`,
    so a scorer that needs the same subjects draws it again from a fresh generator.
    """
    ids = [s.subject if s.subject is not None else str(i) for i, s in enumerate(scans)]
    unique = sorted(set(ids))
    n_held = int(round(fraction * len(unique)))
    held_ids = set(rng.permutation(unique)[:n_held].tolist())
    held = np.asarray([i for i, sid in enumerate(ids) if sid in held_ids], dtype=int)
    kept = np.asarray([i for i, sid in enumerate(ids) if sid not in held_ids], dtype=int)
    return held, kept


class LatentSpace:
    """Per-location whitening and whitened healthy reference vectors, shared by latent scorers."""

    def __init__(self, config: LocationConfig | None = None):
        self.config = config or LocationConfig()
        self.arrays: dict[str, np.ndarray] = {}
        self.held_out: np.ndarray | None = None  # whitened held-out samples (P, K, C), fitting only
        self._factor: np.ndarray | None = None

    @property
    def positions(self) -> np.ndarray:
        return self.arrays["positions"]

    def fit(self, scans: Sequence[EncodedScan]) -> LatentSpace:
        from sklearn.covariance import ledoit_wolf

        cfg = self.config
        rng = np.random.default_rng(cfg.seed)
        latents = np.stack([s.latent for s in scans]).astype(np.float32)
        region = np.any([latent_grid_mask(s.mask, cfg.stride, 0.05) for s in scans], axis=0)
        positions = np.ascontiguousarray(np.argwhere(region), dtype=np.int32)
        held, kept = split_held_out(scans, cfg.standardise_fraction, rng)

        pool = neighbourhood_sample(latents[kept], positions, cfg.whiten_size, cfg.radius, rng)
        channels = pool.shape[2]
        means = pool.mean(axis=1)
        factors = np.empty((len(positions), channels, channels), dtype=np.float32)
        for i in range(len(positions)):
            covariance, _ = ledoit_wolf(pool[i] - means[i])
            factors[i] = np.linalg.cholesky(np.linalg.inv(covariance + 1e-6 * np.eye(channels)))
        # Stored as the float16 lower triangle; everything downstream uses the stored values.
        rows, cols = np.tril_indices(channels)
        self.arrays = {
            "positions": positions,
            "grid_shape": np.asarray(latents.shape[2:], dtype=np.int32),
            "mean": means.astype(np.float32),
            "factor_tril": factors[:, rows, cols].astype(np.float16),
        }
        self._factor = None
        reference = neighbourhood_sample(latents[kept], positions, cfg.reference_size, cfg.radius, rng)
        self.arrays["reference"] = self.whiten(reference).astype(np.float16)
        if len(held):
            samples = neighbourhood_sample(latents[held], positions, cfg.standardise_samples, cfg.radius, rng)
            self.held_out = self.whiten(samples)
        return self

    def factor(self) -> np.ndarray:
        """Full (P, C, C) Cholesky factors of the per-location precisions, unpacked once."""
        if self._factor is None:
            tril = self.arrays["factor_tril"].astype(np.float32)
            channels = int(round((np.sqrt(8 * tril.shape[1] + 1) - 1) / 2))
            rows, cols = np.tril_indices(channels)
            full = np.zeros((tril.shape[0], channels, channels), dtype=np.float32)
            full[:, rows, cols] = tril
            self._factor = full
        return self._factor

    def whiten(self, x: np.ndarray, chunk: slice = slice(None)) -> np.ndarray:
        """y = L^T (x - mean) per location, for x of shape (P_chunk, Q, C)."""
        factor = self.factor()[chunk]
        centred = x - self.arrays["mean"][chunk][:, None, :]
        return np.einsum("pqc,pcd->pqd", centred, factor).astype(np.float32)

    def reference(self, chunk: slice = slice(None)) -> np.ndarray:
        return self.arrays["reference"][chunk].astype(np.float32)

    def queries(self, latent: np.ndarray) -> np.ndarray:
        """Whitened query vectors (P, 1, C) of one scan's latent map (C, d, h, w)."""
        p = self.positions
        raw = np.moveaxis(latent, 0, -1)[p[:, 0], p[:, 1], p[:, 2]][:, None, :].astype(np.float32)
        return self.whiten(raw)

    def to_grid(self, values: np.ndarray) -> np.ndarray:
        grid = np.zeros(tuple(int(v) for v in self.arrays["grid_shape"]), dtype=np.float32)
        p = self.positions
        grid[p[:, 0], p[:, 1], p[:, 2]] = values
        return grid

    def state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        return dict(self.arrays), {"config": asdict(self.config)}

    @classmethod
    def from_state(cls, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> LatentSpace:
        space = cls(LocationConfig(**meta["config"]))
        space.arrays = {k: np.asarray(v) for k, v in arrays.items()}
        return space


class LocationScorer:
    """Base class: subclasses implement ``_fit_local`` and ``_score_local`` on whitened (P, ., C) arrays.

    A scorer fitted alone builds its own :class:`LatentSpace`; a training run builds one space
    and passes it to every latent scorer so the bundle stores it once.
    """

    name: ClassVar[str] = "location"
    needs: ClassVar[frozenset[str]] = frozenset({"latent"})

    def __init__(self, config: LocationConfig | None = None, standardise: bool = True, **params: Any):
        self.config = config or LocationConfig()
        self.standardise = standardise
        self.params = params
        self.arrays: dict[str, np.ndarray] = {}
        self.space: LatentSpace | None = None

    # -- subclass hooks -------------------------------------------------------------------
    def _fit_local(self) -> dict[str, np.ndarray]:
        return {}

    def _score_local(self, queries: np.ndarray, chunk: slice) -> np.ndarray:
        """Raw scores (P_chunk, Q) for whitened queries (P_chunk, Q, C) at positions ``chunk``."""
        raise NotImplementedError

    # -- the shared machinery -------------------------------------------------------------
    def fit(self, scans: Sequence[EncodedScan], space: LatentSpace | None = None) -> None:
        self.space = space or LatentSpace(self.config).fit(scans)
        self.arrays = self._fit_local()
        held = self.space.held_out
        if self.standardise and held is not None:
            raw = self._score_all(held)
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
        assert self.space is not None, f"{self.name} is not fitted"
        raw = self._score_all(self.space.queries(latent))[:, 0]
        if "center" in self.arrays:
            raw = (raw - self.arrays["center"]) / self.arrays["spread"]
        return self.space.to_grid(raw)

    def score(self, scan: EncodedScan) -> np.ndarray:
        assert scan.latent is not None, f"{self.name} needs the latent map"
        heat = upsample(self.score_latent_grid(scan.latent), scan.mask.shape)
        return (heat * scan.mask).astype(np.float32)

    def state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        meta = {
            "scorer": self.name,
            "config": asdict(self.config),
            "standardise": self.standardise,
            "params": self.params,
        }
        return dict(self.arrays), meta

    @classmethod
    def from_state(
        cls, arrays: dict[str, np.ndarray], meta: dict[str, Any], space: LatentSpace | None = None
    ) -> LocationScorer:
        if space is None:
            raise ValueError(f"scorer {meta.get('scorer')} needs the bundle's latent space")
        scorer = cls(
            LocationConfig(**meta["config"]), standardise=meta.get("standardise", True), **meta.get("params", {})
        )
        scorer.arrays = {k: np.asarray(v) for k, v in arrays.items()}
        scorer.space = space
        return scorer
