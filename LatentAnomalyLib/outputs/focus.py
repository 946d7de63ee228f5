"""Where a reader looks first when a case opens, and the near misses: the same in every viewer.

Most scans are not flagged, and under ``--regions calibrated`` their label map is empty. A viewer that only jumps to
the first region of the label map then leaves its slice views where they were, often at 0 mm, outside the volume
(three black views), and the regions above the voxel threshold that were not kept are listed nowhere. A radiologist
reading such a scan wants the nearest miss one click away. So every viewer (the browser review, the Slicer module)
opens a case on :func:`focus_region` (the largest region shown, else the strongest near miss) and lists
:func:`near_misses` apart from the label map's regions, each with its p-value. With no region at all, the viewer
goes to the hottest voxel (:func:`hottest_voxel_ijk`). Plain Python and numpy: no Slicer.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np


def _number(value: Any, default: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(float(value)):
        return default
    return float(value)


def same_region(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Same connected component: same volume and RAS centroid (detect rounds centroids to 0.01 mm)."""
    try:
        ras_a, ras_b = a["centroid_ras_mm"], b["centroid_ras_mm"]
        if len(ras_a) != len(ras_b) or any(abs(float(x) - float(y)) > 0.011 for x, y in zip(ras_a, ras_b)):
            return False
        return abs(float(a["volume_ml"]) - float(b["volume_ml"])) <= 1e-6
    except (KeyError, TypeError, ValueError):
        return False


def near_misses(summary: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The regions above the voxel threshold that the label map does not show (``regions_not_kept``, less any that
    a viewer re-thresholding back to detect's threshold shows again in ``components``), strongest first: smallest
    p-value, then highest peak, then largest volume (regions without a p-value last)."""
    shown = [c for c in (summary or {}).get("components") or [] if isinstance(c, Mapping)]
    regions = [
        r
        for r in (summary or {}).get("regions_not_kept") or []
        if isinstance(r, Mapping) and not any(same_region(r, c) for c in shown)
    ]
    return sorted(
        (dict(r) for r in regions),
        key=lambda r: (
            _number(r.get("p_value"), math.inf),
            -_number(r.get("peak_score"), -math.inf),
            -_number(r.get("volume_ml"), 0.0),
        ),
    )


def focus_region(summary: Mapping[str, Any] | None) -> tuple[dict[str, Any] | None, str]:
    """(region, why): the region a viewer opens the case on, and a few words saying which it is.

    The first region of the label map (detect orders them largest first) when there is one; else the strongest
    near miss; else ``(None, ...)``, and the viewer goes to the hottest voxel instead."""
    shown = [c for c in (summary or {}).get("components") or [] if isinstance(c, Mapping)]
    if shown:
        return dict(shown[0]), "largest region in the label map"
    missed = near_misses(summary)
    if missed:
        return missed[0], "strongest region above the voxel threshold not kept (a near miss)"
    return None, "no region above the voxel threshold: hottest voxel"


def hottest_voxel_ijk(heatmap: np.ndarray) -> tuple[int, int, int] | None:
    """(i, j, k) index of the hottest finite voxel of a (z, y, x) heatmap array, or None when no voxel is above 0
    (the heatmap is 0 outside the brain, so an all-zero map has nothing to show)."""
    values = np.asarray(heatmap)
    if values.size == 0:
        return None
    finite = np.where(np.isfinite(values), values, -np.inf)
    flat = int(np.argmax(finite))
    if not finite.flat[flat] > 0:
        return None
    z, y, x = np.unravel_index(flat, values.shape)
    return int(x), int(y), int(z)
