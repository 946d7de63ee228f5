"""A scan decided by another scorer's map (``decision_scorers``, score/scan_decision.py): the p-value and flag come
from the decision scorer's map and sets, the heatmap and label map stay the shown scorer's, and the decision
scorer's map is the one it computes on its own."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from LatentAnomalyLib.bundle import contents as bundle_contents
from LatentAnomalyLib.bundle.format import Bundle, BundleError
from LatentAnomalyLib.bundle.model import Model
from LatentAnomalyLib.io.read import read_image
from LatentAnomalyLib.pipeline import DetectOptions, Detector
from LatentAnomalyLib.score.subject import map_statistic
from tests.conftest import MODEL
from tests.score.decision_bundle import DECIDES, decision_bundle


@pytest.fixture(scope="module")
def runs(tmp_path_factory, ixi_sample):
    """The committed IXI sample through the bundled model (``--regions all``) and through two decision bundles: one
    whose decision sets every scan exceeds, one that no scan exceeds."""
    image = read_image(ixi_sample)
    folder = tmp_path_factory.mktemp("decision")
    plain = Detector(Model.load(MODEL), DetectOptions(device="cpu", regions="all")).detect(image)
    out = {"plain": plain}
    for key, statistic in {"flags": -100.0, "never": 1e6}.items():
        model = Model.load(decision_bundle(MODEL, folder / key, statistic))
        detector = Detector(model, DetectOptions(device="cpu"))
        out[key] = detector.detect(image)
        out[f"{key}-detector"] = detector
    return out


def test_the_decision_scorer_flags_while_heatmap_and_regions_stay_the_shown_scorers(runs):
    plain, flagged = runs["plain"], runs["flags"]
    s = flagged.summary
    assert s["subject_flagged"] and s["subject_p_value"] == pytest.approx(2 / 41)
    assert s["model"]["decision_scorer"] == DECIDES and s["subject_decision"]["scorer"] == DECIDES
    assert s["conformal"]["n_calibration_scans"] == 40  # the decision scorer's sets, not the shown scorer's 118
    np.testing.assert_array_equal(sitk.GetArrayFromImage(flagged.heatmap), sitk.GetArrayFromImage(plain.heatmap))
    assert s["voxel_threshold"] == plain.summary["voxel_threshold"]
    # a flagged scan shows every region of the shown map above its voxel threshold
    plain_labels = sitk.GetArrayFromImage(plain.labelmap) > 0
    assert plain_labels.any(), "the sample should have a region above the voxel threshold"
    np.testing.assert_array_equal(sitk.GetArrayFromImage(flagged.labelmap) > 0, plain_labels)
    assert [c["volume_ml"] for c in s["components"]] == [c["volume_ml"] for c in plain.summary["components"]]


def test_a_decision_that_does_not_flag_empties_the_label_map(runs):
    s = runs["never"].summary
    assert not s["subject_flagged"] and s["subject_p_value"] == 1.0
    assert not (sitk.GetArrayFromImage(runs["never"].labelmap) > 0).any()
    assert s["regions_not_kept"], "the shown map's regions are listed as not kept"


def test_the_subject_score_is_the_decision_scorers_own_map_statistic(runs):
    detector, result = runs["flags-detector"], runs["flags"]
    own = detector.model.scorers[DECIDES].score(detector.encode(result.preprocessed))
    expected = map_statistic("normalised", own, result.preprocessed.mask)
    assert result.summary["subject_score"] == pytest.approx(expected, rel=1e-5)
    shown = map_statistic("normalised", result.model_heatmap, result.preprocessed.mask)
    assert abs(result.summary["subject_score"] - shown) > 1e-3, "the decision map differs from the shown map"


def test_a_decision_scorer_must_be_another_calibrated_scorer_of_the_bundle(tmp_path):
    bundle = Bundle.load(decision_bundle(MODEL, tmp_path / "b", 0.0))
    for target in ("missing", "atlas"):  # not in the bundle; in it but without calibration sets
        contents = bundle_contents.read(bundle)
        contents.config["decision_scorers"] = {contents.config["default_scorer"]: target}
        folder = bundle_contents.rewrite(bundle, contents, tmp_path / target, bundle.manifest["model_version"])
        with pytest.raises(BundleError, match="decision_scorers"):
            Model.load(folder)


def test_info_names_the_decision_scorer(tmp_path):
    from LatentAnomalyLib.bundle.info import describe

    info = describe(decision_bundle(MODEL, tmp_path / "b", 0.0))
    shown = info["default_scorer"]
    assert info["decision_scorers"] == {shown: DECIDES}
    assert f"{shown}: the scan's p-value and flag come from {DECIDES}'s map and sets" in info["text"]


def test_the_command_line_verdict_names_the_map_its_statistics_come_from(runs):
    from LatentAnomalyLib.cli.options import subject_text

    assert subject_text(runs["flags"].summary).startswith(f"{DECIDES}: subject score ")
    own = {k: v for k, v in runs["flags"].summary.items() if k != "subject_decision"}  # a map deciding by itself
    assert subject_text(own).startswith("subject score ")
