"""Bundle format 1 (model 1.5.0 as committed before format 2) still loads, and detects exactly as its format-2 upgrade.

``format1_t1_1.5.0/`` keeps the JSON files of model 1.5.0, ``format2_t1_1.5.1/`` those of model 1.5.1 (1.5.0 in
format 2), ``format2_t1_1.6.0/`` those of model 1.6.0 (1.5.1 with another conformal rule) and ``format2_t1_1.7.0/``
those of model 1.7.0 (a combined default scorer and its sets), ``format2_t1_1.8.0/`` those of model 1.8.0 (the
calibration scans' ages) and ``format2_t1_1.9.0/`` those of model 1.9.0 (the stripped-input boundary and the
``combined`` subject rule), each with its manifest and the calibration sets of those versions; the weights, other
arrays and templates are copied from the bundled model (1.10.0, a decision scorer), and each manifest verifies
them: they are byte-identical.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from LatentAnomalyLib.bundle.contents import min_component_ml, read
from LatentAnomalyLib.bundle.format import Bundle, BundleError
from LatentAnomalyLib.bundle.info import describe
from LatentAnomalyLib.bundle.migrate import upgrade
from LatentAnomalyLib.bundle.model import Model
from LatentAnomalyLib.cli.upgrade import main as upgrade_main
from LatentAnomalyLib.io.read import read_image
from LatentAnomalyLib.pipeline import DetectOptions, Detector
from LatentAnomalyLib.score.conformal import p_value
from tests.conftest import MODEL, SAMPLES

FORMAT1 = Path(__file__).resolve().parent / "format1_t1_1.5.0"
FORMAT2 = Path(__file__).resolve().parent / "format2_t1_1.5.1"
MODEL_1_6 = Path(__file__).resolve().parent / "format2_t1_1.6.0"
MODEL_1_7 = Path(__file__).resolve().parent / "format2_t1_1.7.0"
MODEL_1_8 = Path(__file__).resolve().parent / "format2_t1_1.8.0"
MODEL_1_9 = Path(__file__).resolve().parent / "format2_t1_1.9.0"


def _with_binaries(json_files: Path, folder: Path) -> Path:
    """``json_files`` (a committed bundle's JSON) plus the bundled model's other files, in ``folder``."""
    shutil.copytree(json_files, folder)
    for name in json.loads((json_files / "manifest.json").read_text())["files"]:
        if not (folder / name).exists():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(MODEL / name, folder / name)
    return folder


@pytest.fixture(scope="module")
def old_bundle(tmp_path_factory) -> Path:
    """Model 1.5.0 in format 1."""
    return _with_binaries(FORMAT1, tmp_path_factory.mktemp("format1") / "latent-anomaly-t1")


@pytest.fixture(scope="module")
def upgraded_bundle(tmp_path_factory) -> Path:
    """Model 1.5.1: model 1.5.0 in format 2."""
    return _with_binaries(FORMAT2, tmp_path_factory.mktemp("format2") / "latent-anomaly-t1")


@pytest.fixture(scope="module")
def bundle_1_6(tmp_path_factory) -> Path:
    """Model 1.6.0."""
    return _with_binaries(MODEL_1_6, tmp_path_factory.mktemp("format2_1_6") / "latent-anomaly-t1")


@pytest.fixture(scope="module")
def bundle_1_7(tmp_path_factory) -> Path:
    """Model 1.7.0."""
    return _with_binaries(MODEL_1_7, tmp_path_factory.mktemp("format2_1_7") / "latent-anomaly-t1")


@pytest.fixture(scope="module")
def bundle_1_8(tmp_path_factory) -> Path:
    """Model 1.8.0."""
    return _with_binaries(MODEL_1_8, tmp_path_factory.mktemp("format2_1_8") / "latent-anomaly-t1")


@pytest.fixture(scope="module")
def bundle_1_9(tmp_path_factory) -> Path:
    """Model 1.9.0."""
    return _with_binaries(MODEL_1_9, tmp_path_factory.mktemp("format2_1_9") / "latent-anomaly-t1")


@pytest.fixture(scope="module")
def models(old_bundle, upgraded_bundle) -> tuple[Model, Model]:
    return Model.load(old_bundle), Model.load(upgraded_bundle)


def _json(folder: Path, name: str) -> dict:
    return json.loads((folder / name).read_text())


def test_format1_files_are_the_1_5_0_ones_and_verify(old_bundle, upgraded_bundle):
    bundle = Bundle.load(old_bundle)  # every checksum of the 1.5.0 manifest, binaries taken from the bundled model
    assert bundle.manifest["format_version"] == 1 and bundle.manifest["model_version"] == "1.5.0"
    assert bundle.has("calibration.json")
    for folder in (upgraded_bundle, MODEL):
        assert Bundle.load(folder).manifest["format_version"] == 2 and not Bundle.load(folder).has("calibration.json")


def test_model_1_5_1_is_the_upgrade_of_1_5_0():
    """The committed 1.5.1 JSON files are exactly what :func:`upgrade` makes of the 1.5.0 files (but the version)."""
    config = _json(FORMAT1, "config.json")
    metas = {name: _json(FORMAT1, files["meta"]) for name, files in config["scorers"].items()}
    new_config, scorers = upgrade(config, _json(FORMAT1, "calibration.json"), metas)
    committed = _json(FORMAT2, "config.json")
    assert committed.pop("version") == "1.5.1" and new_config.pop("version") == "1.5.0"
    assert committed == new_config
    for name, files in committed["scorers"].items():
        assert _json(FORMAT2, files["meta"]) == scorers[name]
    assert "preprocess" not in committed["training"] and "conformal" not in committed
    default = scorers[committed["default_scorer"]]["calibration"]
    assert default["conformal"]["settings"] == config["conformal"]


def test_upgrade_keeps_every_value_detection_reads():
    config = _json(FORMAT1, "config.json")
    calibration = _json(FORMAT1, "calibration.json")
    metas = {name: _json(FORMAT1, files["meta"]) for name, files in config["scorers"].items()}
    before = json.dumps([config, calibration, metas])
    _, scorers = upgrade(config, calibration, metas)
    assert json.dumps([config, calibration, metas]) == before  # inputs untouched
    for name, entry in calibration["scorers"].items():
        doc = scorers[name]
        assert doc["postprocess"] == entry["postprocess"]
        assert {k: doc[k] for k in metas[name]} == metas[name]
        assert {k: doc["calibration"][k] for k in entry if k != "postprocess" and k != "conformal"} == {
            k: v for k, v in entry.items() if k not in ("postprocess", "conformal")
        }
        assert doc["calibration"]["voxel_fpr"] == calibration["voxel_fpr"]
    with pytest.raises(ValueError, match="no entry for scorer"):
        upgrade(config, {"scorers": {}}, metas)


def test_loaded_models_agree(models):
    old, new = models
    assert old.calibration == new.calibration and old.scorer_files == new.scorer_files
    assert old.default_scorer == new.default_scorer and old.preprocess == new.preprocess
    assert {k: v for k, v in old.config.items() if k != "version"} == {
        k: v for k, v in new.config.items() if k != "version"
    }


def test_info_reads_both_formats_alike(old_bundle, upgraded_bundle):
    old, new = describe(old_bundle), describe(upgraded_bundle)
    assert (old["format_version"], new["format_version"]) == (1, 2)
    assert old["thresholds"] == new["thresholds"] and old["scorers"] == new["scorers"]
    assert old["text"].splitlines()[4:] == new["text"].splitlines()[4:]  # all but the name, path and format lines


def test_min_component_ml_from_either_format(old_bundle):
    for folder in (old_bundle, MODEL):
        assert min_component_ml(folder, "gaussian4mm") == 0.1
        assert min_component_ml(folder, "gaussian4mm", model_name="another") == 0.1
        assert min_component_ml(folder, "absent") == 0.1


def test_upgrade_command_writes_model_1_5_1(old_bundle, upgraded_bundle, tmp_path, capsys):
    assert upgrade_main([str(old_bundle), "--out", str(tmp_path / "new"), "--version", "1.5.1"]) == 0
    written = Bundle.load(tmp_path / "new")
    shipped = Bundle.load(upgraded_bundle)
    assert set(written.manifest["files"]) == set(shipped.manifest["files"])
    for name, digest in shipped.manifest["files"].items():
        if name.endswith(".json"):
            assert written.json(name) == shipped.json(name), name
        else:
            assert written.manifest["files"][name] == digest, name
    assert upgrade_main([str(tmp_path / "nowhere"), "--out", str(tmp_path / "x")]) == 2
    assert capsys.readouterr().err.startswith("error: ")


def test_unusable_format1_bundle_is_a_bundle_error(old_bundle, tmp_path):
    copy = tmp_path / "broken"
    shutil.copytree(old_bundle, copy)
    (copy / "calibration.json").write_text(json.dumps({"scorers": {}}))
    manifest = _json(copy, "manifest.json")
    from LatentAnomalyLib.bundle.format import sha256

    manifest["files"]["calibration.json"] = sha256(copy / "calibration.json")
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="cannot be upgraded"):
        read(Bundle.load(copy))


@pytest.fixture(scope="module", params=["IXI_sample_T1", "MSLUB_patient07_T1"])
def detections(request, models):
    """One detection of the sample with each model (format 1, format 2), all scorers' post-processing on one encoding."""
    image = read_image(SAMPLES / f"{request.param}.nii.gz")
    return [Detector(m, DetectOptions(device="cpu")).detect(image) for m in models]


def test_detections_are_bit_identical(detections):
    old, new = detections
    for attribute in ("heatmap", "labelmap"):
        a, b = (sitk.GetArrayFromImage(getattr(r, attribute)) for r in (old, new))
        assert a.dtype == b.dtype and np.array_equal(a, b), attribute
    assert np.array_equal(old.model_heatmap, new.model_heatmap)
    for key in ("subject_score", "subject_p_value", "subject_threshold", "subject_flagged", "voxel_threshold"):
        assert old.summary[key] == new.summary[key], key
    assert old.summary["components"] == new.summary["components"]
    assert old.summary["regions_not_kept"] == new.summary["regions_not_kept"]
    assert old.summary["conformal"] == new.summary["conformal"]


def test_model_1_6_0_changes_only_the_default_scorers_conformal_rule(upgraded_bundle, bundle_1_6):
    """1.6.0 = 1.5.1 with the design-2 rule (docs/calibration.md): same arrays, same files but three JSON entries."""
    old, new = Bundle.load(upgraded_bundle), Bundle.load(bundle_1_6)
    changed = {n for n, d in new.manifest["files"].items() if old.manifest["files"].get(n) != d}
    assert set(new.manifest["files"]) == set(old.manifest["files"])
    assert changed == {"config.json", "scorers/gaussian4mm.json"}
    a, b = old.json("scorers/gaussian4mm.json"), new.json("scorers/gaussian4mm.json")
    conformal_a, conformal_b = a["calibration"].pop("conformal"), b["calibration"].pop("conformal")
    assert a == b
    assert conformal_b["subject_statistic"] == "region_peak" and conformal_b["regions_shown"] == "flagged_scan"
    assert conformal_a["subject_statistic"] == "normalised" and "regions_shown" not in conformal_a
    assert conformal_a["case_ids"] == conformal_b["case_ids"] and conformal_a["arrays"] == conformal_b["arrays"]


def test_model_1_6_0_detects_like_1_5_1_but_for_the_rule(models, detections_1_6):
    """Same heatmaps; the label map shows every region of a flagged scan and none of another."""
    old, new = detections_1_6
    assert np.array_equal(sitk.GetArrayFromImage(old.heatmap), sitk.GetArrayFromImage(new.heatmap))
    every = old.summary["components"] + old.summary["regions_not_kept"]
    peak = max((c["peak_score"] for c in every), default=0.0)
    assert new.summary["subject_region_peak"] == pytest.approx(peak)
    assert new.summary["subject_flagged"] == any(c["p_value_at_most_alpha"] for c in every)
    shown = sitk.GetArrayFromImage(new.labelmap)
    assert shown.sum() == 0 if not new.summary["subject_flagged"] else len(new.summary["components"]) == len(every)


@pytest.fixture(scope="module", params=["IXI_sample_T1", "MSLUB_patient07_T1"])
def detections_1_6(request, models, bundle_1_6):
    image = read_image(SAMPLES / f"{request.param}.nii.gz")
    detector = Detector(models[1], DetectOptions(device="cpu"))
    pre = detector.preprocess(image, {})
    encoded = detector.encode(pre)
    name = models[1].default_scorer
    return [Detector(m, DetectOptions(device="cpu"))._finish(image, pre, encoded, name, {}, 0.0)
            for m in (models[1], Model.load(bundle_1_6))]


def test_model_1_7_0_adds_the_combined_default_scorer_and_keeps_1_6_0(bundle_1_6, bundle_1_7):
    """1.7.0 = 1.6.0 plus the scorer gaussian4mm_atlas (design 3, docs/calibration.md) as the default, with its own
    calibration sets beside gaussian4mm's; every other file byte-identical."""
    old, new = Bundle.load(bundle_1_6), Bundle.load(bundle_1_7)
    changed = {n for n, d in old.manifest["files"].items() if new.manifest["files"].get(n) != d}
    assert changed == {"config.json", "metrics.json", "calibration_sets.safetensors"}
    assert set(new.manifest["files"]) - set(old.manifest["files"]) == {"scorers/gaussian4mm_atlas.json"}
    a, b = old.json("config.json"), new.json("config.json")
    assert (a["default_scorer"], b["default_scorer"]) == ("gaussian4mm", "gaussian4mm_atlas")
    assert b["scorers"].pop("gaussian4mm_atlas") == {"meta": "scorers/gaussian4mm_atlas.json"}
    assert {k: v for k, v in a.items() if k not in ("version", "description", "default_scorer")} == {
        k: v for k, v in b.items() if k not in ("version", "description", "default_scorer")
    }
    sets_a, sets_b = old.arrays("calibration_sets.safetensors"), new.arrays("calibration_sets.safetensors")
    assert set(sets_b) - set(sets_a) == {k.replace("gaussian4mm.", "gaussian4mm_atlas.") for k in sets_a}
    assert all(np.array_equal(sets_a[k], sets_b[k]) for k in sets_a)


def test_model_1_8_0_is_1_7_0_with_the_calibration_ages(bundle_1_7, bundle_1_8):
    """1.8.0 adds each calibration scan's age (and the age bands) to the default scorer's sets and entry; the other
    arrays and every other file are 1.7.0's, so detection without ``--age`` is 1.7.0's."""
    old, new = Bundle.load(bundle_1_7), Bundle.load(bundle_1_8)
    changed = {n for n, d in old.manifest["files"].items() if new.manifest["files"].get(n) != d}
    assert changed == {"config.json", "calibration_sets.safetensors", "scorers/gaussian4mm_atlas.json"}
    assert set(new.manifest["files"]) == set(old.manifest["files"])
    sets_a, sets_b = old.arrays("calibration_sets.safetensors"), new.arrays("calibration_sets.safetensors")
    assert set(sets_b) - set(sets_a) == {"gaussian4mm_atlas.ages"}
    assert all(np.array_equal(sets_a[k], sets_b[k]) for k in sets_a)
    ages = sets_b["gaussian4mm_atlas.ages"]
    entry = new.json("scorers/gaussian4mm_atlas.json")["calibration"]["conformal"]
    assert ages.shape == (entry["n_scans"],) and int(np.isfinite(ages).sum()) == entry["n_scans_with_age"] == 115
    assert entry["age_cuts"] == [40.0, 60.0] and 20 < np.nanmin(ages) < np.nanmax(ages) < 83
    image = read_image(SAMPLES / "MSLUB_patient07_T1.nii.gz")
    a, b = (Detector(Model.load(m), DetectOptions(device="cpu")).detect(image) for m in (bundle_1_7, bundle_1_8))
    assert np.array_equal(sitk.GetArrayFromImage(a.labelmap), sitk.GetArrayFromImage(b.labelmap))
    for key in ("subject_p_value", "subject_flagged", "subject_region_peak", "components"):
        assert a.summary[key] == b.summary[key], key


def _without(doc: dict, *keys: str) -> dict:
    return {k: v for k, v in doc.items() if k not in keys}


def test_model_1_9_0_is_1_8_0_with_the_stripped_boundary_and_the_combined_rule(bundle_1_8, bundle_1_9):
    """1.9.0 (docs/map-design.md, probe 4) changes only ``config.json`` (version, description and
    ``preprocess.stripped_boundary``) and the default scorer's subject rule; every array is 1.8.0's."""
    old, new = Bundle.load(bundle_1_8), Bundle.load(bundle_1_9)
    changed = {n for n, d in old.manifest["files"].items() if new.manifest["files"].get(n) != d}
    assert changed == {"config.json", "scorers/gaussian4mm_atlas.json"}
    assert set(new.manifest["files"]) == set(old.manifest["files"])
    a, b = old.json("config.json"), new.json("config.json")
    assert (a["version"], b["version"]) == ("1.8.0", "1.9.0")
    assert "stripped_boundary" not in a["preprocess"]
    assert b["preprocess"].pop("stripped_boundary") == {
        "band_mm": 6.0, "min_kept_fraction": 0.5, "fill_opening_voxels": 2, "fill_near_voxels": 2
    }
    assert _without(a, "version", "description") == _without(b, "version", "description")
    ca, cb = (m.json("scorers/gaussian4mm_atlas.json")["calibration"].pop("conformal") for m in (old, new))
    assert (ca["subject_statistic"], cb["subject_statistic"]) == ("region_peak", "combined")
    assert cb["settings"]["subject_statistic"] == "combined"
    assert _without(ca, "subject_statistic", "settings") == _without(cb, "subject_statistic", "settings")
    sa, sb = (m.json("scorers/gaussian4mm_atlas.json") for m in (old, new))
    sa["calibration"].pop("conformal"), sb["calibration"].pop("conformal")
    assert sa == sb


def test_model_1_9_0_maps_a_scan_with_skull_as_1_8_0_and_decides_by_bonferroni(bundle_1_8, bundle_1_9):
    """A scan with its skull gets 1.8.0's maps and regions (the boundary steps are for stripped inputs only); its
    p-value is ``min(1, 2 min(p_map, p_peak))`` of the two calibration sets 1.8.0 already held."""
    image = read_image(SAMPLES / "IXI_sample_T1.nii.gz")
    detector = Detector(Model.load(bundle_1_9), DetectOptions(device="cpu"))
    old = Detector(Model.load(bundle_1_8), DetectOptions(device="cpu")).detect(image)
    new = detector.detect(image)
    assert np.array_equal(*(sitk.GetArrayFromImage(r.heatmap) for r in (old, new)))
    for key in ("subject_score", "subject_region_peak", "voxel_threshold"):
        assert old.summary[key] == new.summary[key], key
    sets = detector.calibration_sets(detector.model.default_scorer)
    p_map = p_value(new.summary["subject_score"], sets.subject_scores)
    p_peak = p_value(new.summary["subject_region_peak"], sets.region_max)
    assert old.summary["subject_p_value"] == pytest.approx(p_peak)
    assert new.summary["subject_p_value"] == pytest.approx(min(1.0, 2 * min(p_map, p_peak)))


def test_model_1_7_0_detects_with_gaussian4mm_as_1_6_0_did(bundle_1_6, bundle_1_8):
    """``--scorer gaussian4mm`` on 1.7.0 (and 1.8.0, the same arrays) is 1.6.0's default: same maps, p-values and
    decision (1.9.0 maps this skull-stripped sample with its boundary steps)."""
    image = read_image(SAMPLES / "MSLUB_patient07_T1.nii.gz")
    old = Detector(Model.load(bundle_1_6), DetectOptions(device="cpu")).detect(image)
    new = Detector(Model.load(bundle_1_8), DetectOptions(device="cpu", scorer="gaussian4mm")).detect(image)
    for attribute in ("heatmap", "labelmap"):
        a, b = (sitk.GetArrayFromImage(getattr(r, attribute)) for r in (old, new))
        assert np.array_equal(a, b), attribute
    for key in ("subject_p_value", "subject_flagged", "subject_region_peak", "voxel_threshold", "components"):
        assert old.summary[key] == new.summary[key], key


def test_model_1_10_0_is_1_9_0_with_a_decision_scorer(bundle_1_9):
    """1.10.0 (docs/map-design.md, decision-only role) adds the scorer gaussian4mm_atlas_location, its arrays and
    calibration sets, and names it the default scorer's decision scorer; every 1.9.0 file but the config, the metrics
    and the calibration sets (to which it only adds) is byte-identical."""
    old, new = Bundle.load(bundle_1_9), Bundle.load(MODEL)
    changed = {n for n, d in old.manifest["files"].items() if new.manifest["files"].get(n) != d}
    assert changed == {"config.json", "metrics.json", "calibration_sets.safetensors"}
    added = set(new.manifest["files"]) - set(old.manifest["files"])
    assert added == {"scorers/gaussian4mm_atlas_location.json", "scorers/gaussian4mm_atlas_location.safetensors"}
    a, b = old.json("config.json"), new.json("config.json")
    assert (a["version"], b["version"]) == ("1.9.0", "1.10.0")
    assert b.pop("decision_scorers") == {"gaussian4mm_atlas": "gaussian4mm_atlas_location"}
    assert b["scorers"].pop("gaussian4mm_atlas_location")
    assert _without(a, "version", "description") == _without(b, "version", "description")
    sets_a, sets_b = old.arrays("calibration_sets.safetensors"), new.arrays("calibration_sets.safetensors")
    assert all(k.startswith("gaussian4mm_atlas_location.") for k in set(sets_b) - set(sets_a))
    assert all(np.array_equal(sets_a[k], sets_b[k], equal_nan=True) for k in sets_a)
    metrics_a, metrics_b = old.json("metrics.json"), new.json("metrics.json")
    assert metrics_b.pop("crossfit_gaussian4mm_atlas_location")["n_scans"] == 118
    assert metrics_a == metrics_b


def test_model_1_10_0_shows_1_9_0s_map_and_regions_and_decides_by_its_decision_scorer(bundle_1_9):
    image = read_image(SAMPLES / "MSLUB_patient07_T1.nii.gz")
    old = Detector(Model.load(bundle_1_9), DetectOptions(device="cpu", regions="all")).detect(image)
    new = Detector(Model.load(MODEL), DetectOptions(device="cpu", regions="all")).detect(image)
    assert np.array_equal(*(sitk.GetArrayFromImage(r.heatmap) for r in (old, new)))
    assert np.array_equal(*(sitk.GetArrayFromImage(r.labelmap) for r in (old, new)))  # every region: the same map's
    assert old.summary["voxel_threshold"] == new.summary["voxel_threshold"]
    assert new.summary["subject_decision"]["scorer"] == "gaussian4mm_atlas_location"
    assert "subject_decision" not in old.summary
    assert new.summary["subject_score"] != old.summary["subject_score"]  # another map's statistic
