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

    ``heatmap`` is a (z, y, x) array on ``reference``'s grid. Components are sorted by volume,
    largest first, with centroids in RAS millimetres. With ``ids`` the map holds each component's
    ``id`` (int32) instead of 1, so callers can keep a subset of the components.
    """
    above = heatmap > threshold
    labels, n = ndimage.label(above, structure=STRUCTURE)
    voxel_ml = float(np.prod(reference.GetSpacing())) / 1000.0
    out = np.zeros(heatmap.shape, dtype=np.int32 if ids else np.uint8)
    if n == 0:
        return out, []
    index = np.arange(1, n + 1)
    counts = ndimage.sum_labels(np.ones_like(heatmap, dtype=np.float32), labels, index)
    keep = index[counts * voxel_ml >= min_component_ml]
    if keep.size == 0:
        return out, []
    out[np.isin(labels, keep)] = 1
    centroids = ndimage.center_of_mass(above, labels, keep)
    peaks = ndimage.maximum(heatmap, labels, keep)
    means = ndimage.mean(heatmap, labels, keep)
    components = []
    for lab, centre, peak, mean in zip(keep, centroids, peaks, means):
        zyx = np.asarray(centre, dtype=float)
        point = np.asarray(reference.TransformContinuousIndexToPhysicalPoint([float(v) for v in zyx[::-1]]))
        components.append(
            {
                "volume_ml": float(counts[lab - 1] * voxel_ml),
                "centroid_ras_mm": [round(v, 2) for v in lps_to_ras(point)],
                "centroid_voxel_ijk": [round(float(v), 2) for v in zyx[::-1]],
                "peak_score": float(peak),
                "mean_score": float(mean),
            }
        )
    order = sorted(range(len(components)), key=lambda i: -components[i]["volume_ml"])
    components = [components[i] for i in order]
    for i, component in enumerate(components, start=1):
        component["id"] = i
    if ids:
        lookup = np.zeros(n + 1, dtype=np.int32)
        lookup[keep[order]] = np.arange(1, len(order) + 1, dtype=np.int32)
        out = lookup[labels]
    return out, components
