"""Gaussian scorers on the latent map interpolated to 4 mm: which mean and covariance, judged on validation.

    python experiments/fine_grid_variants.py [--workdir runs/v4] [--model DIR] [--brats]

Rows (all through the same post-processing, the bundle's choice for ``gaussian4mm``):
- ``ocsvm`` and ``gaussian``: the bundle's 8 mm scorers, for reference;
- ``gaussian4mm``: the bundle's scorer on one view of the scan (a mean per 4 mm point, the whitening of the 8 mm
  cell it lies in; model 1.2.0's default, which 1.3.0 averages with the mirrored view: view_averaging_variants.py);
- ``own covariance per point``: a mean *and* a covariance per 4 mm point (too large to bundle:
  about 50 MB of factors for a 32-channel latent);
- ``covariance per cell``: a mean per point, a covariance per cell from its 8 points' residuals;
- ``gaussian4mm evaluated at 2 mm``: the bundle's scorer on the latent map interpolated by 4, each
  voxel standardised by the statistics of its 4 mm point (no new state).
The two refitted variants use the training run's cache and the same held-out subjects, shrinking
each covariance by 10% towards a scaled identity. Voxel AUROC / AUPRC / best Dice are pooled over
the training run's synthetic lesions in the 20 IXI validation scans (where choices are made) and,
with ``--brats``, over the 14 BraTS T1 scans (report only).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from grid_maps import ImageMaps, encode_latent, load_cache, run_grid_benchmark

from LatentAnomalyLib.bundle.model import Model
from LatentAnomalyLib.score.base import EncodedScan, mirror_x, upsample
from LatentAnomalyLib.score.gaussian_fine import FineGaussianScorer
from LatentAnomalyLib.score.location import split_held_out
from LatentAnomalyLib.score.postprocess import PostprocessConfig, postprocess

SHRINK = 0.1


def precision_factor(residuals: torch.Tensor) -> torch.Tensor:
    """Cholesky factors of shrunk inverse covariances of (..., N, C) residuals."""
    n, c = residuals.shape[-2:]
    cov = residuals.transpose(-1, -2) @ residuals / (n - 1)
    scale = torch.diagonal(cov, dim1=-2, dim2=-1).mean(-1)[..., None, None]
    cov = (1 - SHRINK) * cov + (SHRINK * scale + 1e-6) * torch.eye(c)
    return torch.linalg.cholesky(torch.linalg.inv(cov))


class Refitted:
    """The two variants that need refitting, sharing gaussian4mm's points and held-out subjects."""

    def __init__(self, model: Model, workdir: str):
        self.model = model
        self.fine: FineGaussianScorer = model.scorers["gaussian4mm"]
        cache = load_cache(workdir, "train")
        ids = [str(v) for v in np.load(Path(workdir, "cache", "train.npz"))["ids"]]
        scans = [EncodedScan(s.image, s.mask, subject=i) for s, i in zip(cache, ids)]
        scans += [EncodedScan(mirror_x(s.image), mirror_x(s.mask), subject=i) for s, i in zip(cache, ids)]
        latents = [self.latent(s.image) for s in scans]
        config = self.fine.config
        held, kept = split_held_out(scans, config.standardise_fraction, np.random.default_rng(config.seed))
        residuals = torch.from_numpy(np.stack([self.fine.centred(latents[i]) for i in kept]))  # N P 8 C
        n, p, k, c = residuals.shape
        self.factors = {
            "own covariance per point": precision_factor(residuals.permute(1, 2, 0, 3)),  # P 8 C C
            "covariance per cell": precision_factor(residuals.permute(1, 0, 2, 3).reshape(p, n * k, c)),  # P C C
        }
        del residuals
        self.stats = {}
        for name in self.factors:
            raw = np.stack([self.raw(name, latents[i]) for i in held], axis=-1)
            median = np.median(raw, axis=-1)
            mad = 1.4826 * np.median(np.abs(raw - median[..., None]), axis=-1)
            self.stats[name] = (median, np.maximum(mad, max(float(np.median(mad)) * 0.1, 1e-6)))

    def latent(self, image: np.ndarray) -> np.ndarray:
        return encode_latent(self.model, image)

    def raw(self, name: str, latent: np.ndarray) -> np.ndarray:
        r = torch.from_numpy(self.fine.centred(latent))
        factor = self.factors[name]
        pattern = "pkc,pkcd->pkd" if factor.dim() == 4 else "pkc,pcd->pkd"
        return torch.einsum(pattern, r, factor).square().sum(-1).sqrt().numpy()

    def grid(self, name: str, latent: np.ndarray) -> np.ndarray:
        median, spread = self.stats[name]
        points = self.fine._points()
        out = np.zeros(tuple(2 * int(v) for v in self.fine.space.arrays["grid_shape"]), np.float32)
        out[points[..., 0], points[..., 1], points[..., 2]] = (self.raw(name, latent) - median) / spread
        return out


OFFSETS_2MM = np.array([(a, b, c) for a in range(4) for b in range(4) for c in range(4)], dtype=np.int64)


def two_mm_grid(fine: FineGaussianScorer, latent: np.ndarray) -> np.ndarray:
    """gaussian4mm's distance evaluated at every 2 mm voxel, standardised by the statistics of its 4 mm point.

    No new state: the same per-cell means and whitening, the latent map interpolated by 4 instead of 2.
    """
    centred = latent - fine.arrays["cell_mean"].astype(np.float32)
    t = torch.from_numpy(np.ascontiguousarray(centred))[None]
    up = np.moveaxis(F.interpolate(t, scale_factor=4, mode="trilinear", align_corners=False)[0].numpy(), 0, -1)
    points = 4 * fine.space.positions.astype(np.int64)[:, None, :] + OFFSETS_2MM[None]  # (P, 64, 3)
    vectors = torch.from_numpy(np.ascontiguousarray(up[points[..., 0], points[..., 1], points[..., 2]]))
    dist = torch.einsum("pkc,pcd->pkd", vectors, torch.from_numpy(fine.space.factor())).square().sum(-1).sqrt()
    parent = (OFFSETS_2MM[:, 0] // 2) * 4 + (OFFSETS_2MM[:, 1] // 2) * 2 + OFFSETS_2MM[:, 2] // 2
    score = (dist.numpy() - fine.arrays["center"][:, parent]) / fine.arrays["spread"][:, parent]
    grid = np.zeros(up.shape[:3], dtype=np.float32)
    grid[points[..., 0], points[..., 1], points[..., 2]] = score
    return grid


def maps_of(model: Model, refitted: Refitted, image: np.ndarray, mask: np.ndarray) -> dict[str, np.ndarray]:
    latent = refitted.latent(image)
    grids = {name: model.scorers[name].score_latent_grid(latent) for name in ("ocsvm", "gaussian", "gaussian4mm")}
    grids.update({name: refitted.grid(name, latent) for name in refitted.factors})
    grids["gaussian4mm evaluated at 2 mm"] = two_mm_grid(refitted.fine, latent)
    post = PostprocessConfig(**model.calibration["scorers"]["gaussian4mm"]["postprocess"])
    return {k: postprocess((upsample(v, mask.shape) * mask).astype(np.float32), mask, post) for k, v in grids.items()}


def main() -> None:
    def make_maps(model: Model, args) -> ImageMaps:
        refitted = Refitted(model, args.workdir)
        return lambda image, mask: maps_of(model, refitted, image, mask)

    run_grid_benchmark(__doc__, "runs/v4", "scorer", make_maps, degraded=False)


if __name__ == "__main__":
    main()
