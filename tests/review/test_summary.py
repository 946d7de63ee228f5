"""The review page's p-value texts: case summary (subject p-value, alpha, a null score threshold) and region rows
(p-value and p <= alpha; "n/a" for regions recomputed at another threshold). No browser needed."""

from __future__ import annotations

import csv
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from LatentAnomalyReview.case_data import CaseData, ras_matrix
from LatentAnomalyReview.results import load_results
from LatentAnomalyReview.summary import region_rows, summary_text

SUMMARY = {
    "model": {"name": "m", "version": "1.5.0", "scorer": "s"},
    "subject_score": 7.0,
    "subject_threshold": 6.15,
    "subject_flagged": True,
    "subject_p_value": 0.0168,
    "alpha": 0.05,
    "voxel_threshold": 2.45,
    "n_components": 1,
    "flagged_volume_ml": 3.0,
    "brain_volume_ml": 1500.0,
    "regions": "calibrated",
    "regions_not_kept": [{"p_value": 0.5}, {"p_value": 0.9}],
}


def test_summary_states_p_value_alpha_and_flag() -> None:
    lines = summary_text(SUMMARY, "a", True, "a.nii.gz").splitlines()
    assert lines[0] == "case a"
    assert "subject p-value 0.0168 (alpha 0.05; p <= alpha: flagged)" in lines
    assert "subject score 7.00 (threshold 6.15)" in lines
    assert "label map: regions with p <= alpha; 2 region(s) above the voxel threshold not kept" in lines
    healthy = summary_text({**SUMMARY, "subject_p_value": 0.78, "subject_flagged": False}, "a", True, "")
    assert "subject p-value 0.78 (alpha 0.05; p > alpha: not flagged)" in healthy.splitlines()


def test_summary_names_the_calibration_of_its_p_value() -> None:
    site = {**SUMMARY, "conformal": {"calibration_source": "Scanner B (40 scans)"}}
    assert "calibration: Scanner B (40 scans)" in summary_text(site, "a", True, "").splitlines()
    peak = {**site, "subject_region_peak": 9.0, "subject_region_peak_threshold": 8.0}  # model 1.6.0 and later
    assert "calibration: Scanner B (40 scans)" in summary_text(peak, "a", True, "").splitlines()


def test_null_subject_threshold_and_models_without_p_values() -> None:
    text = summary_text({**SUMMARY, "subject_threshold": None, "alpha": 0.005}, "a", True, "")
    assert "subject score 7.00 (no score threshold at this alpha)" in text.splitlines()
    assert "(alpha 0.005; p > alpha: flagged)" in text  # as written by detect; the page does not recompute the flag
    old = {k: v for k, v in SUMMARY.items() if k not in ("subject_p_value", "alpha", "regions", "regions_not_kept")}
    lines = summary_text(old, "a", False, "").splitlines()
    assert "subject score 7.00 (threshold 6.15; flagged)" in lines
    assert any(line.startswith("no subject p-value") for line in lines)
    assert "scan not found (no path recorded): heatmap on black" in lines
    user = summary_text({**SUMMARY, "regions": "all", "voxel_threshold_source": "user"}, "a", True, "")
    assert "label map: every region above the user's voxel threshold (no region p-values)" in user.splitlines()


def test_region_rows_show_p_value_and_whether_it_is_at_most_alpha() -> None:
    component = {"volume_ml": 1.234, "peak_score": 9.0, "centroid_ras_mm": [1.0, 2.0, 3.0]}
    rows = region_rows([component, {**component, "id": 7}, component], [0.01, 0.5, None], 0.05)
    assert [(r["id"], r["p_value"], r["kept"]) for r in rows] == [(1, "0.01", "yes"), (7, "0.5", "no"), (3, "n/a", "n/a")]
    assert rows[0]["volume"] == "1.23" and rows[0]["centroid"] == "1.0, 2.0, 3.0"
    assert [r["kept"] for r in region_rows([component], [0.01], None)] == ["n/a"]  # no alpha: no decision


@pytest.mark.slow  # the batch_results fixture runs batch once per session (about 30 s)
def test_region_p_values_hold_at_the_calibrated_threshold_only(batch_results: Path) -> None:
    results = load_results(batch_results)
    with (batch_results / "scores.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert results.has_p_value and [c.row()["p_value"] for c in results.cases] == [
        f"{float(r['p_value']):.3g}" for r in rows
    ]
    case = next(c for c in results.cases if c.case_id == "IXI_sample_T1")
    data = CaseData.load(case, results.root)
    summary = json.loads((case.folder / "summary.json").read_text())
    expected = [c["p_value"] for c in summary["components"]]
    assert len(expected) >= 1 and data.region_p_values() == expected
    data.rethreshold(data.threshold - 0.2)  # another threshold: regions without p-values
    assert data.components and data.region_p_values() == [None] * len(data.components)
    data.rethreshold(summary["voxel_threshold"])  # back: the recomputed regions find their p-values again
    assert data.region_p_values() == expected


@pytest.mark.slow  # runs detect once (about 15 s)
def test_null_threshold_case_from_detect(low_alpha_case: Path) -> None:
    summary = json.loads((low_alpha_case / "summary.json").read_text())
    assert summary["subject_threshold"] is None and summary["alpha"] == 0.005
    data = CaseData.load(load_results(low_alpha_case).cases[0], low_alpha_case)
    text = summary_text(data.summary, data.case.case_id, data.scan_found, data.case.scan_path)
    if "subject_region_peak" in summary:  # model 1.6.0: the largest region peak decides
        assert summary["subject_region_peak_threshold"] is None  # alpha 0.005 < 1 / 119
        assert f"largest region peak {summary['subject_region_peak']:.2f} (no threshold at this alpha)" in text
    else:
        assert "no score threshold at this alpha" in text
    assert f"subject p-value {summary['subject_p_value']:.3g} (alpha 0.005; p > alpha: not flagged)" in text
    assert data.components == [] and data.region_p_values() == []  # the calibrated label map keeps no region
    data.rethreshold(data.threshold)  # every region above the voxel threshold, with its p-value from regions_not_kept
    dropped = [c["p_value"] for c in summary["regions_not_kept"]]
    assert len(dropped) >= 1 and sorted(data.region_p_values()) == sorted(dropped)
    rows = region_rows(data.components, data.region_p_values(), summary["alpha"])
    assert {r["kept"] for r in rows} == {"no"}
    data.restore_detected()  # what the page's "calibrated" button shows: detect's (empty) calibrated label map
    assert data.labels.sum() == 0 and data.components == [] and data.threshold == summary["voxel_threshold"]
    if importlib.util.find_spec("trame_slicer") is not None:  # the page's own function (no float() of a null)
        from LatentAnomalyReview.app import summary_text as app_summary_text

        assert app_summary_text(data) == text


def test_summary_of_a_model_1_6_summary_states_the_region_peak_and_the_rule() -> None:
    summary = {**SUMMARY, "model": {"name": "m", "version": "1.6.0", "scorer": "s"}, "subject_threshold": None,
               "subject_region_peak": 9.25, "subject_region_peak_threshold": 8.175,
               "conformal": {"regions_shown": "every region of a flagged scan"}}  # fmt: skip
    lines = summary_text(summary, "a", True, "a.nii.gz").splitlines()
    assert "subject p-value 0.0168 (alpha 0.05; p <= alpha: flagged)" in lines
    assert "largest region peak 9.25 (flagged above 8.18)" in lines and "subject score 7.00" in lines
    assert "label map: every region of a flagged scan; 2 region(s) above the voxel threshold not kept" in lines
    no_threshold = summary_text({**summary, "subject_region_peak_threshold": None}, "a", True, "")
    assert "largest region peak 9.25 (no threshold at this alpha)" in no_threshold.splitlines()


@pytest.mark.slow  # shares test_null_threshold_case_from_detect's detect run
def test_a_case_not_flagged_opens_on_its_near_miss_inside_the_volume(low_alpha_case: Path) -> None:
    """The views of a scan that is not flagged go to its strongest near miss (they stayed at 0 mm, outside a
    volume such as BraTS's, before), and the near misses are listed with their p-values."""
    summary = json.loads((low_alpha_case / "summary.json").read_text())
    data = CaseData.load(load_results(low_alpha_case).cases[0], low_alpha_case)
    missed = data.near_misses()
    assert summary["components"] == [] and len(missed) == len(summary["regions_not_kept"]) >= 1
    ps = [m["p_value"] for m in missed]
    assert ps == sorted(ps) and all(p > summary["alpha"] for p in ps)
    point, why = data.focus_ras()
    assert "near miss" in why and point == missed[0]["centroid_ras_mm"]
    corners = data.brain_corners_ras
    assert np.all(point >= corners.min(axis=0)) and np.all(point <= corners.max(axis=0))
    data.summary = {**data.summary, "regions_not_kept": []}  # no region at all: the hottest voxel
    point, why = data.focus_ras()
    k, j, i = np.unravel_index(int(np.argmax(data.heatmap)), data.heatmap.shape)
    assert why == "hottest voxel" and point == pytest.approx((ras_matrix(data.reference) @ [i, j, k, 1.0])[:3])
