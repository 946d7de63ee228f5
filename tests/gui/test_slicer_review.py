"""Slicer module without Slicer: re-thresholding, display range, self-test helpers, regions table, ground-truth metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import SimpleITK as sitk

from tests.slicer_gui import (
    MODULE_DIR,
    SAMPLE,
    SUMMARY,
    display,
    regions,
    results,
    rethreshold,
    selftest,
)

# ----- re-thresholding, display range, self-test helpers --------------------------------------------


def _heatmap_image() -> sitk.Image:
    array = np.zeros((20, 24, 22), dtype=np.float32)
    array[4:9, 5:10, 5:10] = 2.0  # 125 voxels
    array[12:14, 15:17, 15:17] = 1.0  # 8 voxels
    array[15, 3, 3] = 3.0  # a single hot voxel
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((2.0, 2.0, 2.0))  # 8 mm^3 = 0.008 mL per voxel
    image.SetOrigin((-20.0, 10.0, 0.0))
    return image


def test_relabel_matches_the_library_and_updates_the_summary():
    from LatentAnomalyLib.score.components import label_components

    image = _heatmap_image()
    labels, components = rethreshold.relabel(image, 0.5, 0.05)
    expected_labels, expected_components = label_components(sitk.GetArrayFromImage(image), 0.5, image, 0.05)
    assert np.array_equal(labels, expected_labels) and components == expected_components
    assert labels.dtype == np.uint8 and int(labels.sum()) == 133  # the single voxel (0.008 mL) is dropped
    assert [c["volume_ml"] for c in components] == pytest.approx([1.0, 0.064])

    voxel_ml = rethreshold.voxel_volume_ml(image.GetSpacing())
    assert voxel_ml == pytest.approx(0.008)
    updated = rethreshold.summary_after_rethreshold(SUMMARY, 0.5, labels, components, voxel_ml)
    assert updated["voxel_threshold"] == 0.5 and updated["voxel_threshold_source"] == rethreshold.SOURCE_SLICER
    assert updated["detected_voxel_threshold"] == SUMMARY["voxel_threshold"]
    assert updated["flagged_volume_ml"] == pytest.approx(1.064)
    assert updated["flagged_fraction_of_brain"] == pytest.approx(1.064 / 1200.0)
    assert updated["n_components"] == 2 and updated["components"] == components
    assert updated["subject_score"] == SUMMARY["subject_score"]
    assert SUMMARY["voxel_threshold"] == 0.8125 and SUMMARY["n_components"] == 4  # input untouched

    labels, components = rethreshold.relabel(image, 1.5, 0.05)
    back = rethreshold.summary_after_rethreshold(updated, SUMMARY["voxel_threshold"], labels, components, voxel_ml)
    assert back["voxel_threshold_source"] == SUMMARY["voxel_threshold_source"]
    assert back["detected_voxel_threshold"] == SUMMARY["voxel_threshold"]


@pytest.mark.parametrize("fmt", [1, 2])
def test_min_component_ml(tmp_path, fmt):
    """Read through the library from a verified bundle of either format; an altered bundle is not read."""
    from tests.bundle.tiny_bundle import write_tiny_bundle

    bundle = write_tiny_bundle(tmp_path / "m", {"knn": {"min_component_ml": 0.3}, "gaussian": {}}, fmt=fmt)
    assert rethreshold.min_component_ml(bundle, "knn") == 0.3
    assert rethreshold.min_component_ml(bundle, "gaussian") == rethreshold.DEFAULT_MIN_COMPONENT_ML
    assert rethreshold.min_component_ml(bundle, "unknown") == rethreshold.DEFAULT_MIN_COMPONENT_ML
    assert rethreshold.min_component_ml(tmp_path / "nowhere", "knn") == rethreshold.DEFAULT_MIN_COMPONENT_ML
    assert rethreshold.min_component_ml(None, "knn") == rethreshold.DEFAULT_MIN_COMPONENT_ML
    tampered = write_tiny_bundle(tmp_path / "t", {"knn": {"min_component_ml": 0.3}}, fmt=fmt)
    (tampered / "config.json").write_text((tampered / "config.json").read_text() + " ")
    assert rethreshold.min_component_ml(tampered, "knn") == rethreshold.DEFAULT_MIN_COMPONENT_ML


@pytest.mark.parametrize(
    ("threshold", "peak"), [(0.8, 2.0), (0.8, 0.5), (0.0, 0.0), (-1.0, 3.0), (5.0, 5.0), (2.45, 11.5), (2.45, 160.0)]
)
def test_heatmap_display_range(threshold, peak):
    from LatentAnomalyLib.outputs.viewing import heatmap_display_range

    assert display.heatmap_display_range is heatmap_display_range  # the module uses the shared convention
    lower, upper = heatmap_display_range(threshold, peak)
    assert lower < threshold < upper
    scale = max(abs(threshold), 1.0)
    assert upper >= min(peak, threshold + scale) or peak <= threshold  # the ramp reaches the peak or a full scale
    assert threshold - lower == pytest.approx((upper - lower) / 3)
    # transparent below a level near the threshold, however hot the peak: a BraTS tumour (peak 11.5 or 160 against
    # a threshold of 2.45) must not tint the whole scan (lower bound above 0 there)
    assert lower >= threshold - 0.5 * scale


def test_find_sample_scan(tmp_path):
    nested = tmp_path / "repo" / "LatentAnomaly" / "LatentAnomalyGUI"
    nested.mkdir(parents=True)
    assert selftest.find_sample_scan(nested, env={}) is None
    sample = tmp_path / "repo" / selftest.SAMPLE_RELATIVE
    sample.parent.mkdir(parents=True)
    sample.write_bytes(b"x")
    assert selftest.find_sample_scan(nested, env={}) == sample
    assert selftest.find_sample_scan(nested / "LatentAnomaly.py", env={}) == sample  # a file's path works too
    other = tmp_path / "elsewhere.nii.gz"
    other.write_bytes(b"y")
    assert selftest.find_sample_scan(nested, env={selftest.SAMPLE_ENV: str(other)}) == other
    assert selftest.find_sample_scan(nested, env={selftest.SAMPLE_ENV: str(tmp_path / "gone")}) == sample
    assert selftest.find_sample_scan(MODULE_DIR, env={}) == (SAMPLE if SAMPLE.is_file() else None)


def test_geometry_mismatches():
    matrix = [[-1.0, 0, 0, 10.0], [0, -1.0, 0, 20.0], [0, 0, 1.0, -5.0], [0, 0, 0, 1.0]]
    expected = {"dimensions": [10, 12, 8], "spacing": [1.0, 1.0, 1.2], "origin": [10.0, 20.0, -5.0], "ijkToRas": matrix}
    close = {**expected, "origin": [10.00001, 20.0, -5.0]}
    assert selftest.geometry_mismatches(expected, close) == []
    wrong = {**expected, "dimensions": [10, 12, 9], "ijkToRas": [row[:] for row in matrix]}
    wrong["ijkToRas"][0][0] = 1.0
    problems = selftest.geometry_mismatches(expected, wrong)
    assert [p.split(":")[0] for p in problems] == ["dimensions", "ijkToRas"]
    assert selftest.geometry_mismatches(expected, {}) == [f"{k}: missing" for k in expected]


# ----- flagged regions table ---------------------------------------------------------------------


def test_region_rows_are_sorted_numbered_and_formatted():
    rows = regions.region_rows(SUMMARY)
    assert [row.number for row in rows] == [1, 2, 3, 4]
    assert [row.volume_ml for row in rows] == [10.0, 3.0, 1.0, 0.25]
    assert rows[0].ras == (12.34, -40.06, 22.0) and rows[0].peak_score == 2.75
    assert rows[0].cells() == ("1", "10.00", "2.75", "", "", "12.3, -40.1, 22.0")  # no calibration: no p-value
    assert len(regions.COLUMNS) == len(rows[0].cells())
    assert regions.region_rows(None) == [] and regions.region_rows({"components": []}) == []


def test_region_rows_tolerate_incomplete_components():
    summary = {"components": [{"volume_ml": "x", "centroid_ras_mm": [1, "a", 3]}, {"volume_ml": 2.0}, "junk"]}
    rows = regions.region_rows(summary)
    assert [(r.number, r.volume_ml, r.peak_score, r.ras) for r in rows] == [(1, 2.0, None, None), (2, 0.0, None, None)]
    assert rows[0].cells() == ("1", "2.00", "?", "", "", "?")


def _slicer_ijk_to_ras(image: sitk.Image) -> list[list[float]]:
    """What Slicer's GetIJKToRASMatrix holds for a volume read from ``image`` (LPS physical space flipped to RAS)."""
    direction = np.asarray(image.GetDirection()).reshape(3, 3) * np.asarray(image.GetSpacing())
    lps_to_ras = np.diag([-1.0, -1.0, 1.0])
    matrix = np.eye(4)
    matrix[:3, :3] = lps_to_ras @ direction
    matrix[:3, 3] = lps_to_ras @ np.asarray(image.GetOrigin())
    return matrix.tolist()


def test_region_centroids_agree_with_slicer_ras_of_the_voxel_centroid():
    """The library's ``centroid_ras_mm`` is where Slicer puts the voxel centroid, even on an oblique LPS grid."""
    from LatentAnomalyLib.score.components import label_components

    image = _heatmap_image()
    angle = math.radians(20)
    image.SetDirection((math.cos(angle), -math.sin(angle), 0.0, math.sin(angle), math.cos(angle), 0.0, 0.0, 0.0, -1.0))
    _, components = label_components(sitk.GetArrayFromImage(image), 0.5, image, 0.05)
    matrix = _slicer_ijk_to_ras(image)
    for component in components:
        from_voxels = regions.centroid_ras({"centroid_voxel_ijk": component["centroid_voxel_ijk"]}, matrix)
        assert from_voxels == pytest.approx(component["centroid_ras_mm"], abs=0.02)
        assert regions.centroid_ras(component, matrix) == tuple(component["centroid_ras_mm"])
    assert regions.centroid_ras({"centroid_voxel_ijk": [1, 2, 3]}) is None  # no matrix, no RAS centroid
    rows = regions.region_rows({"components": components}, matrix)
    assert [row.ras for row in rows] == [tuple(c["centroid_ras_mm"]) for c in components]


# ----- ground-truth comparison -------------------------------------------------------------------


# ----- conformal p-values (model 1.5.0) in the regions table and after re-thresholding --------------


def test_region_rows_show_p_values_and_whether_they_are_at_most_alpha():
    components = [
        {"volume_ml": 1.0, "centroid_ras_mm": [0, 0, 0], "peak_score": 9.0, "p_value": 0.00840336},
        {"volume_ml": 5.0, "centroid_ras_mm": [1, 2, 3], "peak_score": 4.0, "p_value": 0.5378},
        {"volume_ml": 0.5, "centroid_ras_mm": [1, 2, 3], "peak_score": 3.0},  # recomputed: no p-value
    ]
    rows = regions.region_rows({"alpha": 0.05, "components": components})
    assert [(r.number, r.p_value, r.kept) for r in rows] == [(1, 0.5378, False), (2, 0.00840336, True), (3, None, None)]
    assert [r.cells()[3:5] for r in rows] == [("0.538", "no"), ("0.0084", "yes"), ("n/a", "n/a")]
    assert regions.COLUMNS[3:5] == ("p-value", "p \u2264 alpha")


def _detected(image, threshold: float) -> dict:
    """A 1.5.0-style summary at ``threshold``: the larger region kept (p 0.01), the other in regions_not_kept."""
    _, components = rethreshold.relabel(image, threshold, 0.05)
    kept, dropped = sorted(components, key=lambda c: -c["volume_ml"])
    return {
        **SUMMARY,
        "voxel_threshold": threshold,
        "voxel_threshold_source": "calibrated",
        "alpha": 0.05,
        "subject_p_value": 0.02,
        "regions": "calibrated",
        "n_components": 1,
        "components": [{**kept, "p_value": 0.01, "p_value_at_most_alpha": True}],
        "regions_not_kept": [{**dropped, "p_value": 0.6, "p_value_at_most_alpha": False}],
    }


def test_rethreshold_drops_region_p_values_and_finds_them_again_at_the_detected_threshold():
    image = _heatmap_image()
    voxel_ml = rethreshold.voxel_volume_ml(image.GetSpacing())
    detected = _detected(image, 0.5)
    labels, components = rethreshold.relabel(image, 1.5, 0.05)
    moved = rethreshold.summary_after_rethreshold(detected, 1.5, labels, components, voxel_ml)
    assert moved["components"] and all("p_value" not in c for c in moved["components"])
    assert {r.cells()[3] for r in regions.region_rows(moved)} == {"n/a"}
    assert "Region p-values: n/a at this threshold" in results.format_summary(moved)
    labels, components = rethreshold.relabel(image, 0.5, 0.05)
    back = rethreshold.summary_after_rethreshold(moved, 0.5, labels, components, voxel_ml)
    assert back["detected_components"] == detected["components"]
    assert sorted(c["p_value"] for c in back["components"]) == [0.01, 0.6]  # kept and not-kept regions
    assert [r.cells()[3:5] for r in regions.region_rows(back)] == [("0.01", "yes"), ("0.6", "no")]
    assert "Region p-values" not in results.format_summary(back)


def test_format_summary_states_p_value_alpha_and_a_null_score_threshold():
    summary = {**SUMMARY, "alpha": 0.05, "subject_p_value": 0.0168, "subject_flagged": True, "regions": "calibrated",
               "regions_not_kept": [{}, {}], "voxel_threshold_source": "calibrated",
               "components": [{**SUMMARY["components"][1], "p_value": 0.0084}]}  # fmt: skip
    lines = results.format_summary(summary).splitlines()
    assert lines[1] == "Subject p-value 0.0168 <= alpha 0.05: FLAGGED"
    assert lines[2] == "Subject score 3.46 (score threshold 2.50)"
    assert "Regions kept when their p-value <= alpha (2 above the voxel threshold not kept)" in lines
    assert "  1. 10.00 mL at RAS (12.3, -40.1, 22.0) mm, peak 2.75, p 0.0084" in lines
    low = {**summary, "alpha": 0.005, "subject_threshold": None, "subject_p_value": 0.78, "subject_flagged": False}
    lines = results.format_summary(low).splitlines()
    assert lines[1:3] == ["Subject p-value 0.78 > alpha 0.005: not flagged", "Subject score 3.46 (no score threshold at this alpha)"]
    user = results.format_summary({**summary, "voxel_threshold_source": "user", "regions": "all"})
    assert "Region p-values: none (a user voxel threshold" in user


def test_format_summary_of_a_model_1_6_summary_states_the_region_peak_and_the_rule():
    summary = {**SUMMARY, "alpha": 0.05, "subject_p_value": 0.0168, "subject_flagged": True, "regions": "calibrated",
               "subject_threshold": None, "subject_region_peak": 9.25, "subject_region_peak_threshold": 8.175,
               "regions_not_kept": [], "voxel_threshold_source": "calibrated",
               "conformal": {"regions_shown": "every region of a flagged scan"}}  # fmt: skip
    lines = results.format_summary(summary).splitlines()
    assert lines[1:4] == ["Subject p-value 0.0168 <= alpha 0.05: FLAGGED",
                          "Largest region peak 9.25 (flagged above 8.18)", "Subject score 3.46"]  # fmt: skip
    assert "Regions: every region of a flagged scan, none otherwise (0 above the voxel threshold not kept)" in lines
    older = {k: v for k, v in summary.items() if k not in ("subject_region_peak", "conformal")}
    assert "Largest region peak" not in results.format_summary(older)


def test_back_at_the_detected_threshold_a_calibrated_label_map_keeps_only_detects_regions():
    image = _heatmap_image()
    voxel_ml = rethreshold.voxel_volume_ml(image.GetSpacing())
    detected = _detected(image, 0.5)  # calibrated: the 125-voxel region kept, the 8-voxel one not
    ids, components = rethreshold.relabel(image, 0.5, 0.05, ids=True)
    assert ids.max() == 2 and len(components) == 2
    labels, shown = rethreshold.calibrated_subset(detected, 0.5, ids, components)
    assert int(labels.sum()) == 125 and [c["volume_ml"] for c in shown] == pytest.approx([1.0])
    back = rethreshold.summary_after_rethreshold(detected, 0.5, labels, shown, voxel_ml)
    assert [r.cells()[3:5] for r in regions.region_rows(back)] == [("0.01", "yes")]
    labels, shown = rethreshold.calibrated_subset(back, 0.25, *rethreshold.relabel(image, 0.25, 0.05, ids=True))
    assert int(labels.sum()) == 133 and len(shown) == 2  # another threshold: every region above it
    everything = {**detected, "regions": "all"}  # --regions all: every region, also at the detected threshold
    assert int(rethreshold.calibrated_subset(everything, 0.5, ids, components)[0].sum()) == 133


def test_near_misses_follow_the_regions_shown_at_the_detected_threshold_only():
    image = _heatmap_image()
    voxel_ml = rethreshold.voxel_volume_ml(image.GetSpacing())
    detected = _detected(image, 0.5)
    missed = regions.near_miss_rows(detected, start=2)
    assert [(r.number, r.p_value, r.kept, r.shown) for r in missed] == [(2, 0.6, False, False)]
    assert missed[0].cells()[0] == "2 (not shown)" and missed[0].ras == tuple(detected["regions_not_kept"][0]["centroid_ras_mm"])
    not_flagged = {**detected, "components": [], "n_components": 0,
                   "regions_not_kept": [*detected["regions_not_kept"], *detected["components"]]}  # fmt: skip
    # a scan not flagged: every region above the voxel threshold is a near miss, strongest (smallest p) first
    assert [r.p_value for r in regions.near_miss_rows(not_flagged)] == [0.01, 0.6]
    labels, components = rethreshold.relabel(image, 1.5, 0.05)
    moved = rethreshold.summary_after_rethreshold(detected, 1.5, labels, components, voxel_ml)
    assert regions.near_miss_rows(moved) == []  # they describe detect's label map, not the one on screen
    labels, components = rethreshold.relabel(image, 0.5, 0.05)
    back = rethreshold.summary_after_rethreshold(moved, 0.5, labels, components, voxel_ml)
    assert regions.near_miss_rows(back) == []  # back at detect's threshold the region is in the table already


def test_format_summary_names_the_calibration_of_the_p_value():
    conformal = {**SUMMARY, "subject_p_value": 0.03, "alpha": 0.05, "subject_flagged": True,
                 "conformal": {"calibration_source": "Scanner B (40 scans)"}}
    lines = results.format_summary(conformal).splitlines()
    assert lines[1].startswith("Subject p-value 0.03 <= alpha 0.05: FLAGGED")
    assert lines[2] == "Calibration: Scanner B (40 scans)"
    assert "Calibration:" not in results.format_summary(SUMMARY)  # no p-value, no calibration to name
