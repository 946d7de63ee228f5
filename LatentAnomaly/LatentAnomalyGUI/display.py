"""How the heatmap is coloured: where the colour ramp starts and ends relative to the voxel threshold.

Voxels well below the threshold are made transparent so the scan stays readable under the
overlay; sub-threshold "near misses" still show dimly, and the ramp ends at the hottest voxel.
"""

from __future__ import annotations


def heatmap_display_range(threshold: float, peak: float) -> tuple[float, float]:
    """(lower, upper) of the colour window; the threshold sits one third of the way up.

    ``lower`` is also the display threshold below which the overlay is transparent.
    """
    threshold, peak = float(threshold), float(peak)
    span = peak - threshold if peak > threshold else max(abs(threshold), 1.0) * 0.5
    return threshold - 0.5 * span, threshold + span


def window_level(lower: float, upper: float) -> tuple[float, float]:
    """Slicer's (window, level) for a display range."""
    return upper - lower, (upper + lower) / 2.0
