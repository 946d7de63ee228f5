"""Mahalanobis distance on a 4 mm grid: latents interpolated between cells, each point with its own mean.

The 8 mm latent grid is coarse next to a tumour: a cell's vector blends lesion and healthy tissue,
and the other latent scorers compare it with vectors pooled from neighbouring cells (registration
is never exact), which widens what counts as healthy. This scorer instead
- upsamples the scan's latent map trilinearly by 2 (one vector per 4 mm point);
- subtracts the healthy mean *at that point*. Interpolation is linear, so the mean of interpolated
  healthy latents is the interpolation of each cell's own (unpooled) mean: the bundle stores one
  mean per 8 mm cell, not one per 4 mm point;
- whitens with the factor of the cell the point lies in (the shared :class:`LatentSpace`);
- standardises per 4 mm point by the median and MAD of held-out healthy subjects' distances.
With ``mirror_average`` (parameter), the voxel map is the mean of the scan's map and the mirrored
map of its left-right mirrored copy: the training latents include mirrored scans, so both views
are healthy-like where the brain is, and averaging two encodings of one scan halves the part of
the score that is encoder noise rather than anatomy.
Chosen on synthetic lesions in the IXI validation scans (see README, *Scoring on a 4 mm grid*).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from .base import EncodedScan, mirror_x, upsample
from .location import LatentSpace, LocationScorer, split_held_out

CHILDREN = np.array([(a, b, c) for a in (0, 1) for b in (0, 1) for c in (0, 1)], dtype=np.int64)


def upsample_latent(latent: np.ndarray) -> np.ndarray:
    """(C, d, h, w) -> (C, 2d, 2h, 2w), trilinear with cell centres aligned."""
    t = torch.from_numpy(np.ascontiguousarray(latent, dtype=np.float32))[None]
    return F.interpolate(t, scale_factor=2, mode="trilinear", align_corners=False)[0].numpy()


class FineGaussianScorer(LocationScorer):
    """Per-point Gaussian on the 2x upsampled latent map (see the module docstring)."""

    name: ClassVar[str] = "gaussian4mm"

    @property
    def mirror_average(self) -> bool:
        """Whether ``score`` needs ``EncodedScan.mirrored_latent`` (the encoding of the mirrored image)."""
        return bool(self.params.get("mirror_average", False))

    def _points(self) -> np.ndarray:
        """(P, 8, 3) indices on the fine grid of the children of each fitted cell."""
        return 2 * self.space.positions.astype(np.int64)[:, None, :] + CHILDREN[None]

    def _fine_mean(self) -> np.ndarray:
        """The healthy mean upsampled to the 4 mm grid, computed once per fitted or loaded scorer."""
        if getattr(self, "_fine_mean_cache", None) is None:
            self._fine_mean_cache = upsample_latent(self.arrays["cell_mean"].astype(np.float32))
        return self._fine_mean_cache

    def centred(self, latent: np.ndarray) -> np.ndarray:
        """(P, 8, C) one scan's upsampled latent vectors minus the healthy mean, at each fitted cell's points."""
        points = self._points()
        fine = np.moveaxis(upsample_latent(latent) - self._fine_mean(), 0, -1)
        return np.ascontiguousarray(fine[points[..., 0], points[..., 1], points[..., 2]])

    def _raw(self, latent: np.ndarray) -> np.ndarray:
        """(P, 8) Mahalanobis distances of one scan's standardised latent map."""
        centred = torch.from_numpy(self.centred(latent))
        whitened = torch.einsum("pkc,pcd->pkd", centred, torch.from_numpy(self.space.factor()))
        return whitened.square().sum(-1).sqrt().numpy()

    def fit(self, scans: Sequence[EncodedScan], space: LatentSpace | None = None) -> None:
        self.space = space or LatentSpace(self.config).fit(scans)
        held, kept = split_held_out(scans, self.config.standardise_fraction, np.random.default_rng(self.config.seed))
        mean = np.zeros_like(scans[0].latent, dtype=np.float64)
        for i in kept:
            mean += scans[i].latent
        self.arrays = {"cell_mean": (mean / len(kept)).astype(np.float16)}
        self._fine_mean_cache = None
        if self.standardise and len(held):
            raw = np.stack([self._raw(scans[i].latent) for i in held], axis=-1)  # (P, 8, H)
            median = np.median(raw, axis=-1)
            mad = 1.4826 * np.median(np.abs(raw - median[..., None]), axis=-1)
            floor = max(float(np.median(mad)) * 0.1, 1e-6)
            self.arrays["center"] = median.astype(np.float32)
            self.arrays["spread"] = np.maximum(mad, floor).astype(np.float32)

    def score_latent_grid(self, latent: np.ndarray) -> np.ndarray:
        """Standardised score per 4 mm point (0 outside the fitted cells); twice the latent grid's size."""
        assert self.space is not None, f"{self.name} is not fitted"
        raw = self._raw(latent)
        if "center" in self.arrays:
            raw = (raw - self.arrays["center"]) / self.arrays["spread"]
        points = self._points()
        grid = np.zeros(tuple(2 * int(v) for v in self.space.arrays["grid_shape"]), dtype=np.float32)
        grid[points[..., 0], points[..., 1], points[..., 2]] = raw
        return grid

    def score(self, scan: EncodedScan) -> np.ndarray:
        """Voxel map on the model grid; with ``mirror_average``, averaged with the mirrored view's map."""
        assert scan.latent is not None, f"{self.name} needs the latent map"
        heat = upsample(self.score_latent_grid(scan.latent), scan.mask.shape)
        if self.mirror_average:
            if scan.mirrored_latent is None:
                raise ValueError(f"{self.name} averages over a mirrored view: encode the mirrored image too")
            mirrored = upsample(self.score_latent_grid(scan.mirrored_latent), scan.mask.shape)
            heat = 0.5 * (heat + mirror_x(mirrored))
        return (heat * scan.mask).astype(np.float32)
