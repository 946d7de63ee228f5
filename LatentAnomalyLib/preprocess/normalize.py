"""Intensity normalisation inside the brain, robust to lesions and to scanners.

MRI intensities have no unit: each scanner and sequence puts tissue at a different scale and
contrast. A percentile scaling fixes the scale but not the grey/white contrast, and a large tumour
shifts every percentile. The default ("tissue") anchors two points instead: the median intensity
of voxels that the registered template calls white matter (mapped to 1.0) and grey matter
(mapped to ``gm_value``, the typical IXI ratio). Medians of thousands of voxels move little when a
lesion covers part of a tissue class, and two anchors remove both the scale and the contrast
difference between sites. The contrast gain is capped: old low-contrast scans (BraTS 2013 T1 has a
grey/white ratio of 0.93 against 0.79 in IXI) would otherwise be stretched into noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import LatentAnomalyError


@dataclass(frozen=True)
class NormalisationConfig:
    method: str = "tissue"  # "tissue" | "percentile"
    wm_prior: float = 0.9
    gm_prior: float = 0.7
    gm_value: float = 0.8
    max_contrast_gain: float = 1.5
    low_percentile: float = 1.0
    high_percentile: float = 99.0
    clip: tuple[float, float] = (-0.5, 2.0)
    bias_degree: int = 0
    bias_iterations: int = 3


def polynomial_basis(shape: tuple[int, int, int], degree: int, points: np.ndarray) -> np.ndarray:
    """Monomials up to ``degree`` of voxel coordinates scaled to [-1, 1], for (N, 3) index points."""
    coords = [(points[:, i] / max(shape[i] - 1, 1)) * 2.0 - 1.0 for i in range(3)]
    columns = [np.ones(len(points))]
    for total in range(1, degree + 1):
        for i in range(total + 1):
            for j in range(total - i + 1):
                k = total - i - j
                columns.append(coords[0] ** i * coords[1] ** j * coords[2] ** k)
    return np.stack(columns, axis=1)


def bias_field(
    image: np.ndarray, mask: np.ndarray, gm: np.ndarray, wm: np.ndarray, config: NormalisationConfig
) -> np.ndarray:
    """Multiplicative bias field: a low-order polynomial of log intensity fitted to grey and white matter.

    Why: IXI scans are not bias-corrected and carry the 3 T centre-bright profile, while many
    other datasets are corrected; left in, that smooth profile is what separates scanners most
    (deep white matter darker and cortex brighter than IXI everywhere in other sites' healthy
    scans). A polynomial is global, so a lesion cannot be "corrected away"; residuals beyond
    2.5 MAD (lesions, partial volume) are dropped between iterations. The tissue classes come from
    the registered template, each with its own offset, so the fit follows the field, not the anatomy.
    """
    wm_sel = mask & (wm >= config.wm_prior) & (image > 0)
    gm_sel = mask & (gm >= config.gm_prior) & (image > 0)
    points = np.concatenate([np.argwhere(wm_sel), np.argwhere(gm_sel)])
    if len(points) < 500:
        return np.ones_like(image, dtype=np.float32)
    values = np.log(np.concatenate([image[wm_sel], image[gm_sel]]))
    is_gm = np.concatenate([np.zeros(int(wm_sel.sum())), np.ones(int(gm_sel.sum()))])
    basis = np.column_stack([polynomial_basis(image.shape, config.bias_degree, points), is_gm])
    keep = np.ones(len(values), dtype=bool)
    for _ in range(config.bias_iterations):
        coef, *_ = np.linalg.lstsq(basis[keep], values[keep], rcond=None)
        residual = values - basis @ coef
        mad = 1.4826 * np.median(np.abs(residual[keep] - np.median(residual[keep]))) + 1e-6
        keep = np.abs(residual - np.median(residual[keep])) < 2.5 * mad
    inside = np.argwhere(mask)
    field = np.ones(image.shape, dtype=np.float32)
    smooth = polynomial_basis(image.shape, config.bias_degree, inside) @ coef[:-1]
    field[mask] = np.exp(smooth - coef[0]).astype(np.float32)
    return field


class NormalisationError(LatentAnomalyError):
    """The brain has too few voxels to normalise (empty or absurd brain mask)."""


def tissue_anchors(
    image: np.ndarray, mask: np.ndarray, gm: np.ndarray, wm: np.ndarray, config: NormalisationConfig
) -> tuple[float, float]:
    """Median grey- and white-matter intensities inside the brain mask."""
    wm_voxels = image[mask & (wm >= config.wm_prior)]
    gm_voxels = image[mask & (gm >= config.gm_prior)]
    if wm_voxels.size < 100 or gm_voxels.size < 100:
        raise NormalisationError("too few brain voxels overlap the template's tissue classes")
    return float(np.median(gm_voxels)), float(np.median(wm_voxels))


def normalise(
    image: np.ndarray,
    mask: np.ndarray,
    gm: np.ndarray,
    wm: np.ndarray,
    config: NormalisationConfig = NormalisationConfig(),
) -> tuple[np.ndarray, dict[str, float]]:
    """Return the normalised image (0 outside ``mask``) and the anchors used."""
    if mask.sum() < 1000:
        raise NormalisationError(f"brain mask has only {int(mask.sum())} voxels on the model grid")
    if config.bias_degree > 0:
        image = image / bias_field(image, mask, gm, wm, config)
    if config.method == "tissue":
        low, high = tissue_anchors(image, mask, gm, wm, config)
        if high <= low:
            # T1 white matter is brighter than grey matter; anything else is not a usable T1.
            raise NormalisationError(
                f"white matter is not brighter than grey matter (GM/WM intensity {low / high:.2f} where T1 scans have "
                "< 1): this looks like a T2-, PD-weighted or contrast-inverted scan; the model needs a T1-weighted scan"
            )
        # Gain relative to a plain white-matter scaling; capped so that scans with little
        # grey/white contrast (old, blurry acquisitions) are not stretched into noise.
        gain = (1.0 - config.gm_value) / (1.0 - low / high)
        gain = float(np.clip(gain, 1.0 / config.max_contrast_gain, config.max_contrast_gain))
        scale = gain / high
        offset = 1.0 - gain
    elif config.method == "percentile":
        low, high = (float(v) for v in np.percentile(image[mask], [config.low_percentile, config.high_percentile]))
        if high <= low:
            raise NormalisationError("brain intensities are constant")
        scale = 1.0 / (high - low)
        offset = -low * scale
    else:
        raise ValueError(f"unknown normalisation method {config.method!r}")
    out = np.clip(image * scale + offset, *config.clip).astype(np.float32)
    out[~mask] = 0.0
    return out, {"low_anchor": low, "high_anchor": high, "scale": float(scale), "offset": float(offset)}
