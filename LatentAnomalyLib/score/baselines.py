"""Model-free baseline: intensity thresholding, a within-brain robust z-score of one sequence.

On FLAIR this simple baseline beats most deep unsupervised methods (Meissen et al., BrainLes 2021);
on T1 it collapses, which is why the product does not rely on it. It needs no healthy cohort and
works on the scan's own grid, so any sequence of any dataset can be scored the same way.
"""

from __future__ import annotations

import numpy as np

DIRECTIONS = ("high", "low", "abs")
DEFAULT_THRESHOLD = 3.0  # z > 3: a fixed rule, since no healthy FLAIR or T2 cohort exists to calibrate on


def intensity_zscore(image: np.ndarray, brain: np.ndarray, direction: str = "high") -> np.ndarray:
    """Robust z-score (median, 1.4826 MAD) of ``image`` inside ``brain``; 0 outside."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}")
    values = image[brain].astype(np.float64)
    if values.size == 0:
        return np.zeros(image.shape, dtype=np.float32)
    median = float(np.median(values))
    spread = 1.4826 * float(np.median(np.abs(values - median))) or float(values.std()) or 1.0
    z = (image.astype(np.float64) - median) / spread
    if direction == "low":
        z = -z
    elif direction == "abs":
        z = np.abs(z)
    out = np.zeros(image.shape, dtype=np.float32)
    out[brain] = z[brain]
    return out
