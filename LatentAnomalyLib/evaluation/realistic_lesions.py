"""A second synthetic-lesion generator, closer to the lesions users bring, for choosing maps (docs/map-design.md).

The first generator (:mod:`.synthetic`) paints blobs whose intensity and texture differ from the tissue; the maps it
rewarded were not those that real tumours rewarded (issue 28). This one is written apart, so that no candidate map
is trained on the lesions that choose it, and it adds what the first lacks:

- **mass effect** by a smooth displacement field (radial push that fades with distance, with a random smooth
  component), applied to the whole image so the ventricles and sulci around the mass move; its log-Jacobian is
  returned, for candidates that read deformation;
- **heterogeneous cores**: hypo- or iso-intense (the case intensity methods miss), with an irregular rim and a
  mottled texture, and **diffuse borders** (oedema whose edge is a smooth, noisy ramp, not a sigmoid step);
- **small periventricular white-matter lesions** (2-10 mm ovoids next to the lateral ventricles, 3-12 of them), the
  MS pattern the product misses.

Images are model-grid intensity-normalised arrays with a brain mask (as :func:`.synthetic.paint_lesion` takes); the
input is never modified. Plain numpy/scipy.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from .synthetic import SyntheticLesion

REALISTIC_KINDS = ("glioma_hypo", "glioma_iso", "periventricular")


def _noise(shape: tuple[int, ...], rng: np.random.Generator, sigma: float) -> np.ndarray:
    field = ndimage.gaussian_filter(rng.standard_normal(shape), sigma)
    return field / (field.std() + 1e-8)


def displacement(
    shape: tuple[int, ...], centre: np.ndarray, radius: float, strength: float, rng: np.random.Generator
) -> np.ndarray:
    """(3, z, y, x) displacement (voxels) of a growing mass: tissue pushed radially away from ``centre`` by up to
    ``strength * radius``, fading over about two radii, plus a smooth random part of a tenth of that size."""
    grid = np.indices(shape, dtype=np.float32)
    offset = grid - centre.reshape(3, 1, 1, 1)
    dist = np.sqrt((offset**2).sum(0)) + 1e-3
    push = strength * radius * (1.0 - np.exp(-dist / radius)) * np.exp(-((dist / (2.0 * radius)) ** 2))
    field = offset / dist * push
    wobble = np.stack([_noise(shape, rng, 4.0) for _ in range(3)]) * 0.1 * strength * radius
    return (field + wobble * np.exp(-((dist / (2.5 * radius)) ** 2))).astype(np.float32)


def log_jacobian(field: np.ndarray) -> np.ndarray:
    """log det(I + grad u) of a (3, z, y, x) displacement field: > 0 where tissue is expanded (the mass), < 0 where
    it is compressed (around it); clipped at a tiny determinant where the field folds."""
    grads = [np.gradient(field[i]) for i in range(3)]  # grads[i][j] = d u_i / d x_j
    jac = np.empty((*field.shape[1:], 3, 3), dtype=np.float64)
    for i in range(3):
        for j in range(3):
            jac[..., i, j] = grads[i][j] + (1.0 if i == j else 0.0)
    return np.log(np.clip(np.linalg.det(jac), 1e-3, None)).astype(np.float32)


def _warp(image: np.ndarray, field: np.ndarray) -> np.ndarray:
    """The image seen through the displacement: each voxel takes the tissue from ``x - u(x)`` (pushed outwards)."""
    coords = np.indices(image.shape, dtype=np.float32) - field
    return ndimage.map_coordinates(image, coords, order=1, mode="nearest").astype(np.float32)


def _glioma(image: np.ndarray, mask: np.ndarray, rng: np.random.Generator, iso: bool) -> SyntheticLesion:
    inner = ndimage.binary_erosion(mask, iterations=8)
    candidates = np.argwhere(inner if inner.any() else mask)
    centre = candidates[int(rng.integers(len(candidates)))].astype(np.float32)
    radius = float(rng.uniform(5.0, 13.0))  # voxels (2 mm: 10-26 mm core radius)
    field = displacement(image.shape, centre, radius, float(rng.uniform(0.2, 0.5)), rng)
    moved = _warp(image, field)
    grid = np.indices(image.shape, dtype=np.float32)
    axes = radius * rng.uniform(0.7, 1.3, size=3)
    level = np.sqrt(sum(((grid[i] - centre[i]) / axes[i]) ** 2 for i in range(3)))
    level = level + 0.25 * _noise(image.shape, rng, 2.5)  # irregular outline
    core = level < 0.75
    rim = (level >= 0.75) & (level < 1.0)
    oedema_width = float(rng.uniform(0.6, 1.4))
    oedema = np.clip((1.0 + oedema_width - level) / oedema_width, 0.0, 1.0)  # diffuse ramp outwards
    oedema *= np.clip(1.0 + 0.3 * _noise(image.shape, rng, 2.0), 0.0, 1.5)
    mottle = 0.08 * _noise(image.shape, rng, 0.8)
    local = ndimage.gaussian_filter(moved, 2.0)
    if iso:  # the mean intensity stays that of the tissue; the texture and the grey/white contrast are lost
        core_value = local * (1.0 + mottle)
    else:
        core_value = moved * rng.uniform(0.35, 0.7) * (1.0 + mottle) + rng.uniform(0.0, 0.15)
    rim_value = local * rng.uniform(0.9, 1.05) + 0.5 * mottle
    oedema_value = moved * (1.0 - rng.uniform(0.08, 0.2) * np.clip(oedema, 0.0, 1.0))
    out = np.where(core, core_value, np.where(rim, rim_value, oedema_value)).astype(np.float32)
    moved_mask = _warp(mask.astype(np.float32), field) > 0.5
    out[~moved_mask] = 0.0
    label = (level < 1.0 + 0.5 * oedema_width) & moved_mask
    return SyntheticLesion(out, label, "glioma_iso" if iso else "glioma_hypo")


def _ventricles(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Dark CSF in the central third of the brain: the lateral ventricles' approximation on a normalised T1."""
    inner = ndimage.binary_erosion(mask, iterations=6)
    if not inner.any():
        return np.zeros_like(mask)
    dark = inner & (image < np.percentile(image[inner], 8))
    centre = np.argwhere(mask).mean(axis=0)
    extent = np.ptp(np.argwhere(mask), axis=0) + 1
    grid = np.indices(image.shape, dtype=np.float32)
    central = sum(((grid[i] - centre[i]) / (extent[i] / 3.0)) ** 2 for i in range(3)) <= 1.0
    return dark & central


def _periventricular(image: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> SyntheticLesion:
    ventricles = _ventricles(image, mask)
    if not ventricles.any():
        raise ValueError("no ventricle-like region found: not a normalised T1 brain")
    near = ndimage.binary_dilation(ventricles, iterations=3) & ~ndimage.binary_dilation(ventricles, iterations=1)
    white = mask & (image > np.percentile(image[mask], 60))
    sites = np.argwhere(near & white)
    if len(sites) == 0:
        sites = np.argwhere(near & mask)
    out = image.astype(np.float32, copy=True)
    label = np.zeros(image.shape, dtype=bool)
    grid = np.indices(image.shape, dtype=np.float32)
    for _ in range(int(rng.integers(3, 13))):
        centre = sites[int(rng.integers(len(sites)))].astype(np.float32)
        axes = rng.uniform(0.5, 2.5, size=3)  # voxels of 2 mm: 2-10 mm ovoids
        axes[int(rng.integers(3))] *= rng.uniform(1.2, 1.8)  # elongated (perpendicular to the ventricle)
        level = np.sqrt(sum(((grid[i] - centre[i]) / axes[i]) ** 2 for i in range(3)))
        weight = np.clip(1.3 - level, 0.0, 1.0) * mask
        out = out * (1.0 - weight * rng.uniform(0.2, 0.45))
        label |= (level < 1.0) & mask
    out = out.astype(np.float32)
    out[~mask] = 0.0
    return SyntheticLesion(out, label, "periventricular")


def paint_realistic(
    image: np.ndarray, mask: np.ndarray, rng: np.random.Generator, kind: str | None = None
) -> SyntheticLesion:
    """One lesion of ``kind`` (one of :data:`REALISTIC_KINDS`, random if None) in a normalised model-grid image."""
    kind = kind or REALISTIC_KINDS[int(rng.integers(len(REALISTIC_KINDS)))]
    mask = np.asarray(mask, dtype=bool)
    if kind == "glioma_hypo":
        return _glioma(image, mask, rng, iso=False)
    if kind == "glioma_iso":
        return _glioma(image, mask, rng, iso=True)
    if kind == "periventricular":
        return _periventricular(image, mask, rng)
    raise ValueError(f"unknown lesion kind {kind!r}; known: {', '.join(REALISTIC_KINDS)}")
