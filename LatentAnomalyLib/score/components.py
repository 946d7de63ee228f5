"""Connected components of a thresholded heatmap, measured in the scan's own voxels and millimetres."""

from __future__ import annotations

from typing import Any

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

STRUCTURE = np.ones((3, 3, 3), dtype=bool)  # 26-connectivity: diagonal neighbours belong together


def lps_to_ras(point: np.ndarray) -> list[float]:
    """SimpleITK works in LPS; radiologists and Slicer read RAS."""
    return [float(-point[0]), float(-point[1]), float(point[2])]


def label_components(
    heatmap: np.ndarray, threshold: float, reference: sitk.Image, min_component_ml: float, ids: bool = False
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Binary label map (uint8, 0/1) without components under ``min_component_ml``, and their list.

    ``heatmap`` is a (z, y, x) array on ``reference``'s grid. Components are sorted by
    :func:`region_order` (largest first), with centroids in RAS millimetres. With ``ids`` the map holds each component's
    ``id`` (int32) instead of 1, so callers can keep a subset of the components.
    """
    above = heatmap > threshold
    labels, n = ndimage.label(above, structure=STRUCTURE)
    voxel_ml = float(np.prod(reference.GetSpacing())) / 1000.0
    dtype = np.int32 if ids else np.uint8
    if n == 0:
        return np.zeros(heatmap.shape, dtype=dtype), []
    # Per-component sums over the voxels above the threshold only, in raster order: np.bincount adds the
    # same values in the same order as scipy.ndimage's measurements over the whole grid (bit-identical).
    flat = np.flatnonzero(above)
    lab = labels.ravel()[flat]
    counts = np.bincount(lab, minlength=n + 1).astype(np.float64)
    index = np.arange(1, n + 1)
    keep = index[counts[1:] * voxel_ml >= min_component_ml]
    if keep.size == 0:
        return np.zeros(heatmap.shape, dtype=dtype), []
    values = heatmap.ravel()[flat]
    means = np.bincount(lab, weights=values, minlength=n + 1)[keep] / counts[keep]
    peaks = ndimage.maximum(values, lab, keep)
    coordinates = np.unravel_index(flat, heatmap.shape)
    centroids = np.stack(
        [np.bincount(lab, weights=c.astype(float), minlength=n + 1)[keep] / counts[keep] for c in coordinates], axis=1
    )
    components = []
    for label, centre, peak, mean in zip(keep, centroids, peaks, means):
        zyx = np.asarray(centre, dtype=float)
        point = np.asarray(reference.TransformContinuousIndexToPhysicalPoint([float(v) for v in zyx[::-1]]))
        components.append(
            {
                "volume_ml": float(counts[label] * voxel_ml),
                "centroid_ras_mm": [round(v, 2) for v in lps_to_ras(point)],
                "centroid_voxel_ijk": [round(float(v), 2) for v in zyx[::-1]],
                "peak_score": float(peak),
                "mean_score": float(mean),
            }
        )
    order = sorted(range(len(components)), key=lambda i: region_order(components[i]))
    components = [components[i] for i in order]
    for i, component in enumerate(components, start=1):
        component["id"] = i
    lookup = np.zeros(n + 1, dtype=dtype)
    lookup[keep[order]] = np.arange(1, len(order) + 1) if ids else 1
    return lookup[labels], components


def region_order(component: dict[str, Any]) -> tuple[float, ...]:
    """Sort key of a region: largest first; equal volumes by higher peak, then higher mean score, then RAS centroid,
    so the order does not depend on the direction of the array's axes (a viewer may hold the heatmap flipped)."""
    return (
        -float(component["volume_ml"]),
        -float(component["peak_score"]),
        -float(component["mean_score"]),
        *(float(v) for v in component.get("centroid_ras_mm", ())),
    )
