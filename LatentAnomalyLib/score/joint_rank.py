"""A subject p-value from several statistics at once, so that a scan beyond every healthy scan on any one is flagged.

Why: the shipped rule reads only the largest region peak, so a glioma whose region is larger and heavier than any
healthy scan's, but whose peak is not, is called healthy (issue 28: a BraTS scan outside ../shared/data, with a
subject score above all 118 calibration scans, got p 0.059 from its region peak). A Bonferroni combination of k
statistics costs a factor k on every p-value; ranks cost less.

The statistic (full conformal, Vovk et al. 2005): put the new scan among the n calibration scans; on each column
(larger = more anomalous) give every one of the n + 1 scans its rank, the number of scans whose value is at most
its own; a scan's joint statistic is its largest rank over the columns, and

    p = #{scans i among the n + 1 with T_i >= T_new} / (n + 1).

T is computed the same way for every scan from the set of n + 1, so for a healthy scan exchangeable with the
calibration scans ``P(p <= alpha) <= alpha`` exactly as for one statistic. A new scan strictly above every
calibration value on some column has T = n + 1, which only the (at most k - 1) calibration scans that top another
column can share (when no calibration values tie at a column's maximum): its p is at most k / (n + 1), so with
k = 3 statistics and n >= 59 scans it is flagged at 0.05.

Status: a candidate of docs/map-design.md, measured by ``experiments/joint_rank_probe.py`` (probe 4). With the
region mass it flagged 3/40 degraded healthy copies, above the design's 5%, so it was not chosen; no bundle names it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def joint_ranks(values: np.ndarray) -> np.ndarray:
    """Each row's largest rank over the columns of ``values`` (m, k): the rank counts the rows at most its value."""
    z = np.asarray(values, dtype=np.float64)
    if z.ndim != 2 or z.shape[0] == 0:
        raise ValueError(f"joint ranks need an (m, k) array with m >= 1, got shape {z.shape}")
    ranks = np.stack([np.searchsorted(np.sort(col), col, side="right") for col in z.T], axis=1)
    return ranks.max(axis=1)


def joint_rank_p(calibration: np.ndarray, values: Sequence[float] | np.ndarray) -> float:
    """The conformal p-value of one scan's statistics ``values`` (k,) against ``calibration`` (n, k)."""
    cal = np.asarray(calibration, dtype=np.float64)
    new = np.asarray(values, dtype=np.float64).reshape(1, -1)
    if cal.ndim != 2 or cal.shape[1] != new.shape[1]:
        raise ValueError(f"calibration {cal.shape} and values {new.shape[1:]} name different statistics")
    if not np.isfinite(new).all():
        raise ValueError("joint-rank statistics must be finite")
    t = joint_ranks(np.vstack([cal, new]))
    return float(np.count_nonzero(t >= t[-1]) / t.size)


def largest_region_masses(
    scan_index: np.ndarray, volume_ml: np.ndarray, mean_score: np.ndarray, n_scans: int, threshold: float
) -> np.ndarray:
    """Each calibration scan's largest region mass, ``volume (mL) x (mean score - voxel threshold)`` (0 when it has
    no region), from a bundle's per-region arrays (see :mod:`..training.conformal_bundle`)."""
    mass = np.asarray(volume_ml, dtype=np.float64) * np.maximum(np.asarray(mean_score, dtype=np.float64) - threshold, 0)
    out = np.zeros(n_scans, dtype=np.float64)
    np.maximum.at(out, np.asarray(scan_index, dtype=np.int64), mass)
    return out
