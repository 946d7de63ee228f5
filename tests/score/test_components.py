"""Connected components of a heatmap: their measures equal scipy.ndimage's whole-grid measurements exactly."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from LatentAnomalyLib.score.components import STRUCTURE, label_components, lps_to_ras


def reference_image() -> sitk.Image:
    image = sitk.Image(40, 30, 20, sitk.sitkFloat32)
    image.SetSpacing((1.2, 0.9, 3.0))
    image.SetOrigin((5.0, -3.0, 2.0))
    image.SetDirection((0.0, 1.0, 0.0, -1.0, 0.0, 0.0, 0.0, 0.0, 1.0))
    return image


def scipy_components(heatmap: np.ndarray, threshold: float, reference: sitk.Image, min_ml: float) -> list[dict]:
    """The measures computed with ndimage over the whole grid, as the function documents them."""
    above = heatmap > threshold
    labels, n = ndimage.label(above, structure=STRUCTURE)
    index = np.arange(1, n + 1)
    voxel_ml = float(np.prod(reference.GetSpacing())) / 1000.0
    counts = ndimage.sum_labels(np.ones_like(heatmap, dtype=np.float32), labels, index)
    keep = index[counts * voxel_ml >= min_ml]
    centroids = ndimage.center_of_mass(above, labels, keep) if keep.size else []
    peaks = ndimage.maximum(heatmap, labels, keep) if keep.size else []
    means = ndimage.mean(heatmap, labels, keep) if keep.size else []
    out = []
    for label, centre, peak, mean in zip(keep, centroids, peaks, means):
        ijk = [float(v) for v in np.asarray(centre, dtype=float)[::-1]]
        ras = lps_to_ras(np.asarray(reference.TransformContinuousIndexToPhysicalPoint(ijk)))
        out.append(
            {
                "volume_ml": float(counts[label - 1] * voxel_ml),
                "centroid_ras_mm": [round(v, 2) for v in ras],
                "centroid_voxel_ijk": [round(v, 2) for v in ijk],
                "peak_score": float(peak),
                "mean_score": float(mean),
            }
        )
    return sorted(out, key=lambda c: (-c["volume_ml"], -c["peak_score"], -c["mean_score"], *c["centroid_ras_mm"]))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_components_match_scipy_measurements_bit_for_bit(dtype):
    rng = np.random.default_rng(3)
    reference = reference_image()
    for smoothing in (0.0, 0.7, 1.5):
        heatmap = ndimage.gaussian_filter(rng.random((20, 30, 40)), smoothing).astype(dtype)
        for threshold in [*np.quantile(heatmap, [0.5, 0.8, 0.97]).tolist(), 2.0]:
            for min_ml in (0.0, 0.01, 0.2):
                expected = scipy_components(heatmap, threshold, reference, min_ml)
                binary, components = label_components(heatmap, threshold, reference, min_ml)
                ids, same = label_components(heatmap, threshold, reference, min_ml, ids=True)
                assert [{k: v for k, v in c.items() if k != "id"} for c in components] == expected
                assert same == components and [c["id"] for c in components] == list(range(1, len(expected) + 1))
                assert binary.dtype == np.uint8 and ids.dtype == np.int32
                assert np.array_equal(binary, (ids > 0).astype(np.uint8))
                for component in components:  # each id marks the voxels of its component, of its volume
                    voxels = int((ids == component["id"]).sum())
                    assert voxels * (float(np.prod(reference.GetSpacing())) / 1000.0) == component["volume_ml"]
                    assert heatmap[ids == component["id"]].max() == component["peak_score"]


def test_equal_volumes_are_ordered_by_peak_whatever_the_axis_directions():
    """Two regions of the same size: the higher peak comes first on the array and on its mirror image (a viewer
    may hold the heatmap with flipped axes; the regions table must not reorder when it re-thresholds)."""
    heatmap = np.zeros((20, 30, 40), np.float32)
    heatmap[2:5, 2:5, 2:5] = 3.0  # first in scan order, lower peak
    heatmap[12:15, 20:23, 30:33] = 2.5
    heatmap[13, 21, 31] = 4.0
    reference = reference_image()
    for array in (heatmap, heatmap[::-1, ::-1, ::-1].copy()):
        _, components = label_components(array, 1.0, reference, 0.0)
        assert [c["volume_ml"] for c in components] == [components[0]["volume_ml"]] * 2
        assert [c["peak_score"] for c in components] == [4.0, 3.0]
    twin = np.zeros_like(heatmap)  # volume, peak and mean all equal: the RAS centroid decides
    twin[2:5, 2:5, 2:5] = twin[12:15, 20:23, 30:33] = 3.0
    orders = [
        [c["centroid_ras_mm"] for c in label_components(array, 1.0, reference, 0.0)[1]]
        for array in (twin, twin[::-1, ::-1, ::-1].copy())
    ]
    assert orders[0] == sorted(orders[0])
    assert sorted(orders[1]) == orders[1]  # the mirrored array's regions (other centroids), in the same rule
