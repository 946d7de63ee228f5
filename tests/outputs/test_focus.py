"""Where a viewer opens a case and which near misses it lists (shared by the review page and the Slicer module)."""

from __future__ import annotations

import numpy as np

from LatentAnomalyLib.outputs.focus import focus_region, hottest_voxel_ijk, near_misses


def _region(peak: float, p: float | None, volume: float = 1.0, where: float = 0.0) -> dict:
    region = {"peak_score": peak, "volume_ml": volume, "centroid_ras_mm": [where, 0.0, 0.0]}
    return region if p is None else {**region, "p_value": p}


def test_a_flagged_scan_opens_on_its_largest_region_shown() -> None:
    summary = {"components": [_region(5.0, 0.01, 9.0, 1.0), _region(9.0, 0.01, 2.0, 2.0)],
               "regions_not_kept": [_region(20.0, 0.5, where=3.0)]}  # fmt: skip
    region, why = focus_region(summary)
    assert region["centroid_ras_mm"] == [1.0, 0.0, 0.0] and why.startswith("largest region")


def test_a_scan_not_flagged_opens_on_its_strongest_near_miss() -> None:
    missed = [_region(8.0, 0.3, where=1.0), _region(7.0, 0.059, where=2.0), _region(9.0, None, where=3.0),
              _region(7.5, 0.059, where=4.0)]  # fmt: skip
    ordered = near_misses({"components": [], "regions_not_kept": missed})
    # smallest p first; equal p: higher peak first; a region without a p-value (a user threshold) last
    assert [r["centroid_ras_mm"][0] for r in ordered] == [4.0, 2.0, 1.0, 3.0]
    region, why = focus_region({"components": [], "regions_not_kept": missed})
    assert region["centroid_ras_mm"][0] == 4.0 and "near miss" in why


def test_near_misses_leave_out_regions_the_label_map_shows_again() -> None:
    again = _region(7.0, 0.6, where=2.0)
    summary = {"components": [_region(9.0, 0.01, where=1.0), dict(again)], "regions_not_kept": [again]}
    assert near_misses(summary) == []
    assert near_misses(None) == [] and near_misses({"regions_not_kept": [None, "x"]}) == []


def test_without_regions_the_hottest_voxel_in_ijk_order() -> None:
    heatmap = np.zeros((4, 5, 6), dtype=np.float32)  # (z, y, x)
    assert focus_region({"components": [], "regions_not_kept": []})[0] is None
    assert hottest_voxel_ijk(heatmap) is None  # nothing above 0: nothing to show
    heatmap[3, 1, 2] = 2.5
    heatmap[0, 0, 0] = np.nan  # a NaN is never the hottest voxel
    assert hottest_voxel_ijk(heatmap) == (2, 1, 3)
