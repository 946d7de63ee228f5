"""The subject score: one number per scan, from its model-grid score map.

Detection, calibration, the cross-fit of calibration sets and the evaluation baselines all call
:func:`subject_score`, so the number a bundle is calibrated on is the number detection reports.
"""

from __future__ import annotations

import numpy as np

from .postprocess import normalise_within_scan

TOP_FRACTION = 0.01
# Subject statistics of one score map: name -> (on the scan-standardised map?, top fraction averaged).
MAP_STATISTICS = {"raw": (False, TOP_FRACTION), "normalised": (True, TOP_FRACTION), "normalised_top01": (True, 0.001)}


def subject_score(score_map: np.ndarray, mask: np.ndarray, top_fraction: float = TOP_FRACTION) -> float:
    """Mean of the highest ``top_fraction`` of the scores inside ``mask`` (0.0 for an empty mask).

    The number of voxels averaged is ``round(top_fraction * n)``, at least one.
    """
    values = score_map[mask]
    if values.size == 0:
        return 0.0
    k = max(1, int(round(top_fraction * values.size)))
    return float(np.mean(np.partition(values, values.size - k)[-k:]))


def map_statistic(name: str, score_map: np.ndarray, mask: np.ndarray) -> float:
    """One of :data:`MAP_STATISTICS`: the subject score of ``score_map`` (``raw``, model 1.4.0) or of the scan-standardised
    map (``normalised``: (s - median) / 1.4826 MAD over the brain, top 1%; ``normalised_top01``: top 0.1%)."""
    if name not in MAP_STATISTICS:
        raise ValueError(f"unknown subject statistic {name!r}; known: {', '.join(MAP_STATISTICS)}")
    standardised, fraction = MAP_STATISTICS[name]
    values = normalise_within_scan(score_map, mask) if standardised else score_map
    return subject_score(values, mask, top_fraction=fraction)
