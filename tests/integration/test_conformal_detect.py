"""The bundled model's conformal calibration sets in detection: summary, label map, scores.csv, older bundles."""

from __future__ import annotations

import csv
import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from LatentAnomalyLib.bundle.format import BundleWriter, sha256
from LatentAnomalyLib.bundle.model import Model
from LatentAnomalyLib.cli.main import main
from LatentAnomalyLib.io.read import read_image
from LatentAnomalyLib.pipeline import DetectOptions, Detector
from LatentAnomalyLib.score.components import label_components
from LatentAnomalyLib.training.conformal_bundle import SETS_FILE


@pytest.fixture(scope="module")
def model(model):
    """The bundled model with its default map deciding by itself: these tests check the conformal rules on one map
    (model 1.10.0's decision scorer, whose map decides the scan, is tested in tests/score/test_scan_decision.py and
    tests/bundle/test_bundle_migration.py)."""
    return dataclasses.replace(model, config={**model.config, "decision_scorers": {}})


@pytest.fixture(scope="module")
def encoded(model, ixi_sample):
    """The healthy IXI sample preprocessed and encoded once; each test finishes it with its own options."""
    detector = Detector(model, DetectOptions(device="cpu"))
    image = read_image(ixi_sample)
    pre = detector.preprocess(image, {})
    return image, pre, detector.encode(pre)


def finish(model, encoded, **options):
    image, pre, scan = encoded
    detector = Detector(model, DetectOptions(device="cpu", **options))
    return detector._finish(image, pre, scan, model.default_scorer, {}, 0.0)


def test_bundle_lists_its_calibration_sets(model):
    entry = model.calibration["scorers"][model.default_scorer]["conformal"]
    files = model.bundle.manifest["files"]
    assert entry["arrays"] == SETS_FILE and files[SETS_FILE] == sha256(model.bundle.folder / SETS_FILE)
    arrays = model.bundle.arrays(SETS_FILE)
    n = entry["n_scans"]
    assert n == len(entry["case_ids"]) == 118
    assert arrays[f"{model.default_scorer}.subject_scores"].shape == (n,)
    assert np.all(arrays[f"{model.default_scorer}.region_max"] >= 0)
    split = json.loads((Path(__file__).resolve().parents[2] / "splits" / "ixi_t1_split.json").read_text())
    assert not set(entry["case_ids"]) & set(split["test"])  # the test split is never calibration data
    assert sum(p.stat().st_size for p in model.bundle.folder.rglob("*") if p.is_file()) < 56e6


P_VALUE_RULE = {"subject_statistic": "normalised", "regions_shown": "p_value"}  # models 1.5.x


def test_label_map_keeps_exactly_the_regions_with_p_at_most_alpha(model, encoded):
    """Models 1.5.x's rule (regions by their own p-value) on the bundle's calibration sets; at alpha 0.9 the
    sample's regions fall on both sides of alpha."""
    everything = finish(model, encoded, regions="all")
    for alpha in (0.05, 0.5, 0.9):
        result = finish_with_rule(model, encoded, P_VALUE_RULE, alpha=alpha)
        s = result.summary
        assert s["alpha"] == alpha and s["regions"] == "calibrated"
        assert 0 < s["subject_p_value"] <= 1 and s["subject_flagged"] == (s["subject_p_value"] <= alpha)
        assert all(c["p_value"] <= alpha for c in s["components"])
        assert all(c["p_value"] > alpha for c in s["regions_not_kept"])
        assert len(s["components"]) + len(s["regions_not_kept"]) == everything.summary["n_components"]
        labels = sitk.GetArrayFromImage(result.labelmap)
        all_labels = sitk.GetArrayFromImage(everything.labelmap)
        assert np.all(labels <= all_labels)  # a subset of the voxel-threshold map
        voxel_ml = float(np.prod(result.labelmap.GetSpacing())) / 1000
        assert labels.sum() * voxel_ml == pytest.approx(sum(c["volume_ml"] for c in s["components"]))
    # "all" is today's voxel-threshold label map
    cal = model.calibration["scorers"][model.default_scorer]
    heat = sitk.GetArrayFromImage(everything.heatmap)
    expected, _ = label_components(heat, cal["voxel_threshold"], everything.heatmap, cal["min_component_ml"])
    assert np.array_equal(sitk.GetArrayFromImage(everything.labelmap), expected)


def test_bundled_rule_shows_every_region_of_a_flagged_scan_and_none_otherwise(model, encoded):
    """Models 1.6.0-1.8.0's rule (flagged by the largest region peak, ``flagged_scan``; 1.9.0 keeps ``flagged_scan``
    with the ``combined`` statistic, tested below and on the MS sample, which it flags at 0.7); the sample is flagged at alpha 0.9 and not at 0.05, so both
    sides of the rule are checked."""
    sets = Detector(model, DetectOptions()).calibration_sets(model.default_scorer)
    assert (sets.subject_statistic, sets.regions_shown) == ("combined", "flagged_scan")
    everything = finish(model, encoded, regions="all").summary
    peak = max((c["peak_score"] for c in everything["components"]), default=0.0)
    flags = set()
    for alpha in (0.05, 0.9):
        s = finish_with_rule(model, encoded, {"subject_statistic": "region_peak"}, alpha=alpha).summary
        assert s["subject_region_peak"] == pytest.approx(peak)
        assert s["subject_flagged"] == any(c["p_value"] <= alpha for c in everything["components"])
        if s["subject_flagged"]:  # every region, each with its own p-value (some above alpha)
            assert [c["p_value"] for c in s["components"]] == [c["p_value"] for c in everything["components"]]
            assert s["regions_not_kept"] == []
        else:
            assert s["components"] == [] and len(s["regions_not_kept"]) == everything["n_components"]
        flags.add(s["subject_flagged"])
    assert flags == {True, False}


def test_the_bundled_combined_rule_flags_the_ms_sample_at_0_7_and_then_shows_every_region(model, mslub_sample):
    """Model 1.9.0's own rule on a scan it flags: p = min(1, 2 min(p_map, p_peak)) (the MS sample: 0.59), every
    region shown when flagged (alpha 0.7), none at 0.05."""
    from LatentAnomalyLib.score.conformal import p_value

    image = read_image(mslub_sample["T1"])
    detector = Detector(model, DetectOptions(device="cpu", alpha=0.7))
    pre = detector.preprocess(image, {})
    scan = detector.encode(pre)
    flagged = detector._finish(image, pre, scan, model.default_scorer, {}, 0.0).summary
    sets = detector.calibration_sets(model.default_scorer)
    p_map = p_value(flagged["subject_score"], sets.subject_scores)
    p_peak = p_value(flagged["subject_region_peak"], sets.region_max)
    assert flagged["subject_p_value"] == pytest.approx(min(1.0, 2 * min(p_map, p_peak)))
    assert flagged["subject_p_value"] <= 0.7
    assert flagged["subject_flagged"] and flagged["components"] and not flagged["regions_not_kept"]
    quiet_detector = Detector(model, DetectOptions(device="cpu"))
    quiet = quiet_detector._finish(image, pre, scan, model.default_scorer, {}, 0.0).summary
    assert quiet["subject_p_value"] == flagged["subject_p_value"] and not quiet["subject_flagged"]
    assert quiet["components"] == [] and len(quiet["regions_not_kept"]) == len(flagged["components"])


def test_user_threshold_gives_the_voxel_threshold_map_without_region_p_values(model, encoded):
    result = finish(model, encoded, threshold=2.0)
    assert result.summary["regions"] == "all" and result.summary["voxel_threshold"] == 2.0
    assert all("p_value" not in c for c in result.summary["components"])
    assert result.summary["subject_p_value"] is not None


def finish_with_rule(model, encoded, rule: dict, **options):
    """Detection with the bundle's calibration sets under another subject statistic / regions rule."""
    image, pre, scan = encoded
    detector = Detector(model, DetectOptions(device="cpu", **options))
    name = model.default_scorer
    detector._sets[name] = dataclasses.replace(detector.calibration_sets(name), **rule)
    return detector._finish(image, pre, scan, name, {}, 0.0)


@pytest.mark.parametrize("alpha", [0.05, 0.5, 0.9])
def test_combined_flag_and_flagged_scan_regions(model, encoded, alpha):
    everything = finish(model, encoded, regions="all")
    rule = {"subject_statistic": "combined", "regions_shown": "flagged_scan"}
    s = finish_with_rule(model, encoded, rule, alpha=alpha).summary
    peak = max((c["peak_score"] for c in everything.summary["components"]), default=0.0)
    assert s["subject_region_peak"] == pytest.approx(peak)
    assert s["subject_score"] == pytest.approx(finish(model, encoded).summary["subject_score"])  # same map statistic
    sets = dataclasses.replace(Detector(model, DetectOptions()).calibration_sets(model.default_scorer), **rule)
    assert s["subject_p_value"] == pytest.approx(sets.subject(s["subject_score"], alpha, peak)["subject_p_value"])
    if s["subject_flagged"]:
        assert len(s["components"]) == everything.summary["n_components"] and not s["regions_not_kept"]
    else:
        assert s["components"] == [] and s["flagged_volume_ml"] == 0.0
    # a user threshold changes the regions shown, not the subject decision (read at the calibrated threshold)
    user = finish_with_rule(model, encoded, rule, alpha=alpha, threshold=1.0).summary
    assert user["subject_region_peak"] == pytest.approx(peak) and user["subject_flagged"] == s["subject_flagged"]


def test_bundle_without_calibration_sets_detects_with_the_old_rules(model, encoded, tmp_path):
    writer = BundleWriter(tmp_path / "old")
    scorer_files = {files["meta"] for files in model.config["scorers"].values()}
    for name in model.bundle.manifest["files"]:
        if name != SETS_FILE and name not in scorer_files:
            writer.add_file(name, model.bundle.path(name))
    for name in sorted(scorer_files):  # each scorer's file without its conformal entry
        doc = model.bundle.json(name)
        doc["calibration"].pop("conformal", None)
        writer.add_json(name, doc)
    old = Model.load(writer.finish(model.name, "1.4.9"))
    result = finish(old, encoded)
    s = result.summary
    assert s["subject_p_value"] is None and any("no conformal calibration sets" in m for m in s["messages"])
    assert s["subject_flagged"] == (s["subject_score"] > s["subject_threshold"])
    new_all = finish(model, encoded, regions="all")
    assert np.array_equal(sitk.GetArrayFromImage(result.labelmap), sitk.GetArrayFromImage(new_all.labelmap))


def test_batch_writes_p_values_and_ranks_by_them(tmp_path, ixi_sample, mslub_sample):
    scans = tmp_path / "scans"
    scans.mkdir()
    shutil.copy(ixi_sample, scans / "ixi.nii.gz")
    shutil.copy(mslub_sample["T1"], scans / "ms.nii.gz")
    out = tmp_path / "out"
    assert main(["batch", str(scans), "--out", str(out), "--export", "all", "--device", "cpu", "--alpha", "0.1"]) == 0
    with open(out / "scores.csv") as handle:
        rows = list(csv.DictReader(handle))
    p = [float(r["p_value"]) for r in rows]
    assert p == sorted(p) and all(r["alpha"] == "0.1" for r in rows)
    for row in rows:
        summary = json.loads((out / row["case_id"] / "summary.json").read_text())
        assert summary["subject_p_value"] == pytest.approx(float(row["p_value"]), rel=1e-5)
        assert (row["flagged"] == "yes") == (summary["subject_p_value"] <= 0.1)
        assert all(c["p_value"] <= 0.1 for c in summary["components"])


def test_bad_alpha_or_regions_with_threshold_are_one_line_errors(tmp_path, ixi_sample, capsys):
    out = tmp_path / "out"
    assert main(["detect", str(ixi_sample), "--out", str(out), "--threshold", "2", "--regions", "calibrated"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --regions calibrated needs the calibrated voxel threshold")
    assert not (out / "summary.json").exists()
    for option, value in [("--alpha", "0"), ("--alpha", "nan"), ("--alpha", "abc"), ("--threshold", "nan"),
                          ("--threshold", "inf"), ("--threshold", "-1"), ("--threshold", "0")]:
        with pytest.raises(SystemExit) as exit_info:
            main(["detect", str(ixi_sample), "--out", str(out), option, value])
        assert exit_info.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(f"error: latent-anomaly detect: argument {option}: ")
        assert not out.exists()


def test_alpha_below_the_smallest_p_value_says_nothing_can_be_flagged(model, encoded):
    n = model.calibration["scorers"][model.default_scorer]["conformal"]["n_scans"]
    image, pre, scan = encoded
    detector = Detector(model, DetectOptions(device="cpu", alpha=1.5 / (n + 1)))  # the combined rule: p >= 2/(n+1)
    result = detector._finish(image, pre, scan, model.default_scorer, {}, 0.0)
    assert not result.summary["subject_flagged"] and result.summary["subject_region_peak_threshold"] is None
    assert any(f"below 2/{n + 1}" in m and "no scan can be flagged" in m for m in result.summary["messages"])
    at_alpha = finish(model, encoded, alpha=2.0 / (n + 1))  # the smallest alpha that can flag a scan: no note
    assert not any("no scan can be flagged" in m for m in at_alpha.summary["messages"])


def test_age_compares_with_the_calibration_scans_of_its_band(model, encoded):
    """``--age``: the p-value is the rank among the default scorer's calibration scans of that age band only, and the
    summary names the band; no age gives the marginal p-value over all of them."""
    from LatentAnomalyLib.score.conformal import decision_threshold, finite_number, load_sets, p_value

    sets = load_sets(model, model.default_scorer)
    everyone = finish(model, encoded).summary
    assert everyone["age_matching"] is None
    for age, band in ((25.0, sets.ages < 40), (50.0, (sets.ages >= 40) & (sets.ages < 60)), (71.0, sets.ages >= 60)):
        summary = finish(model, encoded, age=age).summary
        peak = summary["subject_region_peak"]
        assert peak == everyone["subject_region_peak"]
        p_map = p_value(summary["subject_score"], sets.subject_scores[band])
        assert summary["subject_p_value"] == min(1.0, 2 * min(p_map, p_value(peak, sets.region_max[band])))
        # each statistic at alpha / 2 (no threshold where a band's scans cannot reach it)
        assert summary["subject_region_peak_threshold"] == finite_number(decision_threshold(sets.region_max[band], 0.025))
        assert summary["conformal"]["region_statistic_threshold"] == decision_threshold(sets.region_max[band], 0.05)
        assert summary["regions_not_kept"]  # the healthy sample is not flagged: its regions are scored, not shown
        for region in summary["regions_not_kept"]:
            assert region["p_value"] == p_value(region["peak_score"], sets.region_max[band])
        # the not-a-brain check still compares the subject score with every calibration scan
        assert summary["subject_score_threshold"] == everyone["subject_score_threshold"]
        assert summary["age_matching"]["n_calibration_scans_in_band"] == int(band.sum())
        assert summary["conformal"]["n_calibration_scans"] == int(band.sum())
        assert f"aged {summary['age_matching']['age_band']}" in summary["conformal"]["guarantee"]
    young, old = (finish(model, encoded, age=a).summary["regions_not_kept"] for a in (25.0, 71.0))
    assert [r["p_value"] for r in young] != [r["p_value"] for r in old]  # the band changes the p-values


def test_age_errors_are_one_line(tmp_path, ixi_sample, capsys):
    out = tmp_path / "out"
    for value in ("-1", "200", "nan", "old"):
        with pytest.raises(SystemExit) as exit_info:
            main(["detect", str(ixi_sample), "--out", str(out), "--age", value])
        assert exit_info.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: latent-anomaly detect: argument --age: ")
    code = main(["detect", str(ixi_sample), "--out", str(out), "--age", "50", "--scorer", "gaussian4mm", "--device", "cpu",
                 "--progress", "none"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "stores no calibration ages" in err[0] and not out.exists()


def test_guarantee_names_the_label_map_only_under_the_calibrated_rule(model, encoded):
    calibrated = finish(model, encoded).summary["conformal"]["guarantee"]
    everything = finish(model, encoded, regions="all").summary["conformal"]
    assert "P(subject flagged) <= 0.05" in calibrated and "P(any region kept in the label map) <= 0.05" in calibrated
    assert "P(subject flagged) <= 0.05" in everything["guarantee"]
    assert "label map) <=" not in everything["guarantee"] and "no false-positive guarantee" in everything["guarantee"]
    assert everything["regions_shown"].startswith("every region above the voxel threshold")
