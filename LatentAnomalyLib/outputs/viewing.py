"""How results are shown, in one place for every viewer: the Slicer module, the browser review and report.html.

A radiologist moving between the three sees the same picture: the scan windowed to brain percentiles, the heatmap
in the Inferno colours from just below the voxel threshold to the hottest voxel (lower scores transparent) at the
same default opacity, and the label map drawn as an outline. Pure numpy and matplotlib's colour data: no Slicer.
"""

from __future__ import annotations

import numpy as np

HEATMAP_COLORMAP = "Inferno"
DEFAULT_HEATMAP_OPACITY = 0.5
# Scan window: these percentiles of the brain voxels map to black and white, so the brain is neither washed out
# by a bright skull or fat nor crushed by the background.
SCAN_WINDOW_PERCENTILES = (0.5, 99.5)
LABEL_OUTLINE_RGB = (0.0, 1.0, 0.2)  # label-map outline: green, distinct from every Inferno colour
TRUTH_OUTLINE_RGB = (0.0, 0.6, 1.0)  # ground-truth outline: blue


def heatmap_display_range(threshold: float, peak: float) -> tuple[float, float]:
    """(lower, upper) of the heatmap's colour window; the voxel threshold sits one third of the way up.

    ``lower`` is also the display threshold below which the overlay is transparent: sub-threshold "near misses"
    still show dimly. The ramp reaches the hottest voxel when it is close to the threshold; its width is capped at
    the threshold's own scale (``max(|threshold|, 1)``), so one very hot region neither pulls ``lower`` below zero
    (which tinted the whole scan, background included) nor darkens every other flagged voxel: hotter voxels
    saturate at the top colour.
    """
    threshold, peak = float(threshold), float(peak)
    scale = max(abs(threshold), 1.0)
    span = min(max(peak - threshold, 0.5 * scale), scale)
    return threshold - 0.5 * span, threshold + span


def inferno_table(size: int = 256) -> np.ndarray:
    """(size, 4) RGBA in 0..1: matplotlib's Inferno, the table Slicer ships under the same name."""
    from matplotlib import colormaps

    return np.asarray(colormaps["inferno"](np.linspace(0.0, 1.0, size)), dtype=np.float64)


def scan_window(image: np.ndarray, brain: np.ndarray | None = None) -> tuple[float, float]:
    """(low, high) grey window from brain percentiles (all non-zero voxels when no brain mask is given)."""
    values = image[brain > 0] if brain is not None and np.any(brain) else image[image != 0]
    if values.size == 0:
        values = image.ravel()
    low, high = np.percentile(values.astype(np.float64), SCAN_WINDOW_PERCENTILES)
    if high <= low:
        high = low + 1.0
    return float(low), float(high)


def heatmap_rgba(
    heatmap: np.ndarray, threshold: float, opacity: float = DEFAULT_HEATMAP_OPACITY, peak: float | None = None
) -> np.ndarray:
    """RGBA overlay (..., 4) of a heatmap slice or volume: Inferno over the display range, alpha 0 below it.

    ``peak`` is the hottest score of the whole volume (a slice of it shows in the volume's colours); default: the
    maximum of ``heatmap`` itself.
    """
    heatmap = np.asarray(heatmap, dtype=np.float64)
    if peak is None:
        peak = float(np.max(heatmap)) if heatmap.size else threshold
    lower, upper = heatmap_display_range(threshold, peak)
    table = inferno_table()
    position = np.clip((heatmap - lower) / max(upper - lower, 1e-12), 0.0, 1.0)
    rgba = table[np.round(position * (len(table) - 1)).astype(int)]
    rgba[..., 3] = np.where(heatmap >= lower, float(opacity), 0.0)
    return rgba
