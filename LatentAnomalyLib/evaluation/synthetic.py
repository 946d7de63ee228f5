"""Synthetic lesions on healthy validation scans, for model selection without touching test data.

Design choices (encoder family, scorer settings, post-processing) need a lesion signal, but every
real lesion scan here is reported on. Lesions painted into IXI validation scans on the model grid
give that signal without tuning on what is reported. They mimic what T1 shows of tumours and
their oedema: hypointense blobs with irregular borders, a darker necrotic core, and regions where
the normal grey/white texture is lost while the mean intensity stays about the same (the case
the reconstruction residual and intensity z-scores miss).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

KINDS = ("hypointense", "necrotic", "texture_loss", "tumour")


@dataclass(frozen=True)
class SyntheticLesion:
    image: np.ndarray
    label: np.ndarray
    kind: str


def _smooth_noise(shape: tuple[int, ...], rng: np.random.Generator, sigma: float) -> np.ndarray:
    noise = ndimage.gaussian_filter(rng.standard_normal(shape), sigma)
    return noise / (noise.std() + 1e-8)


def _mass_effect(
    image: np.ndarray, mask: np.ndarray, centre: np.ndarray, radius: float, grid: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Push tissue radially away from ``centre`` (a growing mass displaces its surroundings)."""
    offset = grid - centre.reshape(3, 1, 1, 1)
    dist = np.sqrt((offset**2).sum(0)) + 1e-3
    push = 0.35 * radius * np.exp(-((dist / (2.0 * radius)) ** 2))
    coords = grid - offset / dist * push  # sample from closer to the centre
    moved = ndimage.map_coordinates(image, coords, order=1, mode="constant")
    moved_mask = ndimage.map_coordinates(mask.astype(np.float32), coords, order=1, mode="constant") > 0.5
    return moved.astype(np.float32), moved_mask & mask


def paint_lesion(
    image: np.ndarray, mask: np.ndarray, rng: np.random.Generator, kind: str | None = None
) -> SyntheticLesion:
    """Paint one lesion into a normalised model-grid image (the input is not modified)."""
    kind = kind or KINDS[int(rng.integers(len(KINDS)))]
    inner = ndimage.binary_erosion(mask, iterations=8 if kind == "tumour" else 5)
    candidates = np.argwhere(inner if inner.any() else mask)
    centre = candidates[int(rng.integers(len(candidates)))]
    scale = rng.uniform(6.0, 15.0) if kind == "tumour" else rng.uniform(4.0, 11.0)  # voxels of 2 mm
    radii = scale * rng.uniform(0.75, 1.25, size=3)
    grid = np.indices(image.shape, dtype=np.float32)
    if kind == "tumour":
        image, mask = _mass_effect(image, mask, centre, scale, grid)
    dist = np.sqrt(sum(((grid[i] - centre[i]) / radii[i]) ** 2 for i in range(3)))
    level = dist + 0.15 * _smooth_noise(image.shape, rng, 3.0)
    weight = 1.0 / (1.0 + np.exp(-(1.0 - level) / 0.08))
    weight *= mask
    texture = 0.03 * _smooth_noise(image.shape, rng, 0.8)
    if kind == "hypointense":
        target = image * rng.uniform(0.55, 0.85) + texture
    elif kind == "necrotic":
        core = 1.0 / (1.0 + np.exp(-(0.5 - level) / 0.08))
        target = image * rng.uniform(0.65, 0.85) * (1 - core) + rng.uniform(0.15, 0.35) * core + texture
    elif kind == "tumour":
        # Necrotic core, a near-isointense solid rim and surrounding oedema (mildly hypointense).
        core = 1.0 / (1.0 + np.exp(-(0.45 - level) / 0.06))
        oedema = rng.uniform(0.78, 0.92)
        target = image * oedema * (1 - core) + rng.uniform(0.2, 0.45) * core + texture
    elif kind == "texture_loss":
        local_mean = ndimage.gaussian_filter(image, 3.0)
        target = local_mean + 2.0 * texture
    else:
        raise ValueError(f"unknown lesion kind {kind!r}")
    painted = (image * (1 - weight) + target * weight).astype(np.float32)
    painted[~mask] = 0.0
    return SyntheticLesion(painted, (weight > 0.5) & mask, kind)
