"""The subject score: one number per scan, from its model-grid score map.

Detection, calibration, the cross-fit of calibration sets and the evaluation baselines all call
:func:`subject_score`, so the number a bundle is calibrated on is the number detection reports.
"""

from __future__ import annotations

import numpy as np

TOP_FRACTION = 0.01


def subject_score(score_map: np.ndarray, mask: np.ndarray, top_fraction: float = TOP_FRACTION) -> float:
    """Mean of the highest ``top_fraction`` of the scores inside ``mask`` (0.0 for an empty mask).

    The number of voxels averaged is ``round(top_fraction * n)``, at least one.
    """
    values = score_map[mask]
    if values.size == 0:
        return 0.0
    k = max(1, int(round(top_fraction * values.size)))
    return float(np.mean(np.partition(values, values.size - k)[-k:]))
