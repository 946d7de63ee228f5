"""Intensities a single voxel cannot move: spikes are set aside before any statistic sees them.

Why: several steps read an intensity range from the whole scan. The brain mask's smoothing spreads one voxel at
1e30 over a third of the volume (a 5248 mL "brain"), and the registration metric's histogram spans the scan's
minimum to maximum, so one voxel at 100x the maximum squeezes every tissue into one bin and moved a subject p-value
from 0.639 to 0.958. Clinical archives do hold such voxels (a reconstruction spike, a corrupted byte in a float
file). The scan's robust range (its 1st to 99th percentile) is what every decision here is measured against:

- a few voxels far beyond it (more than ``OUTLIER_RANGES`` ranges above or below; healthy and lesion scans here
  reach at most 3.2 ranges, ``benchmarks/intensity_outliers.py``) are replaced by the median of their neighbours
  for the analysis, with a warning (the input file is never changed);
- an edge of the field of view (air) brighter than half the range: a contrast-inverted scan (``max - image``),
  whose whole head would otherwise pass for a brain without tissue contrast, is refused like other non-T1 scans;
- many such voxels, a scan with no robust range (almost every voxel the same value), or a scan with only a handful
  of distinct values (a label map or mask given as a scan) cannot give a plausible brain and are refused.

Scans without outliers pass through untouched (the same object), so the preprocessing of every scan the bundled
model was calibrated on is bit-identical.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..errors import InputError

LOW_PERCENTILE, HIGH_PERCENTILE = 1.0, 99.0
OUTLIER_RANGES = 10.0  # beyond this many robust ranges above the 99th (below the 1st) percentile: not tissue
MAX_OUTLIER_FRACTION = 1e-4  # more outliers than this share of the voxels: the scan itself is corrupted
MIN_DISTINCT_VALUES = 10  # fewer distinct intensities: a label map or a mask, not an MRI scan
SAMPLE_VOXELS = 2_000_000  # distinct values are counted on an evenly strided sample this large
MAX_TAIL_JUMP = 10.0  # step between consecutive tail percentiles (from the median): at most 1.7 in the scans here (benchmark)
MAX_BORDER_LEVEL = 0.5  # air at the edge of the field of view: at most 0.001 of the range in the scans here

__all__ = ["border_level", "robust_range", "screen_intensities", "tail_jump"]


def tail_jump(values: np.ndarray) -> float:
    """The largest step between consecutive upper percentiles (90, 95, 98, 99, 99.5, 99.9th), measured from the
    median, in either tail (the lower one mirrored): how far a cluster of voxels stands apart from the rest.

    More than 1% of corrupted voxels carry the 99th percentile with them, so the robust range cannot see them; but
    they still stand orders of magnitude apart from the percentiles below them, which tissue never does.
    """
    return _worst_step(*_tail_percentiles(values))


TAIL_LEVELS = (50.0, 90.0, 95.0, 98.0, 99.0, 99.5, 99.9)  # 99 and its mirror 1 are the robust range's ends


def _tail_percentiles(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(upper, lower) percentiles at ``TAIL_LEVELS`` and their mirrors, in one pass over the voxels."""
    both = np.percentile(values.ravel(), [*TAIL_LEVELS, *(100.0 - level for level in TAIL_LEVELS)])
    return both[: len(TAIL_LEVELS)], both[len(TAIL_LEVELS) :]


def _worst_step(upper: np.ndarray, lower: np.ndarray) -> float:
    worst = 1.0
    for quantiles in (upper - upper[0], lower[0] - lower):
        steps = quantiles[1:]
        for below, above in itertools.pairwise(steps):
            if below > 0:
                worst = max(worst, float(above / below))
    return worst


def border_level(values: np.ndarray, low: float, high: float) -> float:
    """Median of the outer two-voxel shell of the field of view, as a share of the robust range (0: its low end).

    The shell is mostly air, which is dark in every MR magnitude image; it is bright only when the contrast was
    inverted (``max - image``), which no check of tissue order sees when the whole head turns into "brain".
    """
    shell = np.ones(values.shape, dtype=bool)
    shell[tuple(slice(2, -2) if n > 4 else slice(0, 0) for n in values.shape)] = False
    return (float(np.median(values[shell])) - low) / (high - low)


def robust_range(values: np.ndarray) -> tuple[float, float]:
    """The 1st and 99th percentiles of every voxel (in float64: float32 sums of 1e30 overflow)."""
    low, high = np.percentile(values.ravel(), [LOW_PERCENTILE, HIGH_PERCENTILE])
    return float(low), float(high)


def _name(path: str | Path | None) -> str:
    return f"{path}: " if path else ""


def screen_intensities(image: sitk.Image, path: str | Path | None = None) -> tuple[sitk.Image, list[str]]:
    """``image`` with its far outliers replaced by their neighbours' median, and warnings saying so.

    Returns ``image`` itself when nothing is beyond the margin. Raises ``InputError`` for a scan whose intensities
    cannot give a plausible brain. ``path`` only names the scan in the messages.
    """
    values = sitk.GetArrayViewFromImage(image)
    upper, lower = _tail_percentiles(values)  # one pass: every statistic below reads these
    low, high = float(lower[TAIL_LEVELS.index(HIGH_PERCENTILE)]), float(upper[TAIL_LEVELS.index(HIGH_PERCENTILE)])
    if not high > low:
        share = 100.0 * float(np.mean(values == np.median(values)))
        raise InputError(
            f"{_name(path)}{share:.1f}% of the voxels have the same value (no intensity range beyond a few voxels): "
            "the scan is empty or corrupted"
        )
    step = max(1, values.size // SAMPLE_VOXELS)
    distinct = np.unique(values.ravel()[::step]).size
    if distinct < MIN_DISTINCT_VALUES:
        raise InputError(
            f"{_name(path)}holds only {distinct} distinct intensities: a label map or a mask, not an MRI scan; "
            "give the T1-weighted scan itself"
        )
    span = high - low
    jump = _worst_step(upper, lower)
    if jump > MAX_TAIL_JUMP:
        raise InputError(
            f"{_name(path)}more than 0.1% of the voxels have intensities far outside the rest of the scan (a cluster "
            f"{jump:.3g} times further from the median than the voxels next to it in intensity; 98% of the voxels lie "
            f"in {low:.4g}..{high:.4g}): a corrupted scan, which cannot give a plausible brain; check the export"
        )
    border = border_level(values, low, high)
    if border > MAX_BORDER_LEVEL:
        raise InputError(
            f"{_name(path)}the edge of the field of view (air around the head, dark in every MRI) is bright: its median "
            f"lies at {100 * border:.0f}% of the scan's intensity range; the contrast looks inverted, and the model "
            "needs a T1-weighted scan as acquired (refused like T2, PD and FLAIR scans)"
        )
    ceiling, floor = high + OUTLIER_RANGES * span, low - OUTLIER_RANGES * span
    above, below = values > ceiling, values < floor
    count = int(np.count_nonzero(above)) + int(np.count_nonzero(below))
    if count == 0:
        return image, []
    extreme = float(values.max()) if above.any() else float(values.min())
    if count > max(1, int(MAX_OUTLIER_FRACTION * values.size)):
        raise InputError(
            f"{_name(path)}{count} voxels ({100.0 * count / values.size:.2g}%) have intensities far outside the rest "
            f"of the scan (up to {extreme:.4g}; 98% of the voxels lie in {low:.4g}..{high:.4g}): a corrupted "
            "scan or a strong artefact, which cannot give a plausible brain; check the export"
        )
    out = sitk.GetImageFromArray(_replaced(values, above | below))
    out.CopyInformation(image)
    note = (
        f"{count} voxel(s) had intensities far outside the rest of the scan (up to {extreme:.4g}; 98% of the voxels "
        f"lie in {low:.4g}..{high:.4g}): each was replaced by the median of its neighbours for the analysis (the "
        "input file is unchanged); check the scan for corrupted voxels"
    )
    return out, [note]


def _replaced(values: np.ndarray, outliers: np.ndarray) -> np.ndarray:
    """A float32 copy with each outlier set to the median of the inliers among its 26 neighbours (the value the
    voxel most likely had), or to the nearest inlier value of the scan when all its neighbours are outliers too."""
    inliers = values[~outliers]
    out = np.clip(values, float(inliers.min()), float(inliers.max())).astype(np.float32)
    for index in np.argwhere(outliers):
        box = tuple(slice(max(int(i) - 1, 0), int(i) + 2) for i in index)
        near = values[box][~outliers[box]]
        if near.size:
            out[tuple(index)] = float(np.median(near))
    return out
