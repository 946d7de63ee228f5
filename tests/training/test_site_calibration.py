"""`latent-anomaly calibrate`: a site's healthy scans give a new bundle whose p-values, voxel threshold and age bands
come from them, run through the same detection pipeline; too few scans are refused, bad scans listed."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest

from LatentAnomalyLib.bundle.contents import read
from LatentAnomalyLib.bundle.format import Bundle
from LatentAnomalyLib.bundle.info import describe
from LatentAnomalyLib.cli.main import main
from LatentAnomalyLib.score.conformal import p_value
from LatentAnomalyLib.training.conformal_bundle import SETS_FILE
from LatentAnomalyLib.training.site_calibration import _site_version, needed_scans
from tests.conftest import MODEL
from tests.training.tiny_cohort import write_site

SCORER = "gaussian4mm_atlas"


def test_needed_scans_is_the_smallest_n_whose_smallest_p_value_reaches_alpha():
    assert needed_scans(0.05, "region_peak") == 19  # 1/20 = 0.05
    assert needed_scans(0.01, "normalised") == 99
    assert needed_scans(0.2, "region_peak") == 4
    assert needed_scans(0.05, "combined") == 39  # Bonferroni: 2/40
    for alpha in (0.05, 0.01, 0.2, 0.03):
        n = needed_scans(alpha, "region_peak")
        assert 1 / (n + 1) <= alpha < 1 / n


def test_too_few_scans_for_alpha_is_one_line_naming_the_number_needed(tmp_path, capsys):
    write_site(tmp_path / "scans", ["gain", "gamma", "noise"])
    code = main(["calibrate", "--scans", str(tmp_path / "scans"), "--out", str(tmp_path / "b"), "--device", "cpu"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert err[0] == (  # the bundled model's combined rule: p-values of at least 2/(n+1)
        "error: 3 scans cannot reach alpha 0.05: at least 39 healthy scans are needed "
        "(smallest p-value 2/(n+1) with the combined rule)"
    )
    assert not (tmp_path / "b").exists()


def test_the_region_peak_rule_needs_fewer_scans_and_is_written_into_the_new_bundle(tmp_path, capsys):
    """``--subject-statistic region_peak``: p-values of at least 1/(n+1), so 19 scans reach alpha 0.05 (39 with the
    bundled combined rule), and 4 scans reach 0.2; the new bundle decides by that rule."""
    write_site(tmp_path / "few", ["gain", "gamma", "noise"])
    argv = ["calibrate", "--scans", str(tmp_path / "few"), "--out", str(tmp_path / "b"), "--device", "cpu",
            "--subject-statistic", "region_peak"]
    assert main(argv) == 2
    assert capsys.readouterr().err.strip() == (
        "error: 3 scans cannot reach alpha 0.05: at least 19 healthy scans are needed (smallest p-value 1/(n+1))"
    )
    write_site(tmp_path / "four", ["bias", "gain", "gamma", "noise"])
    argv = ["calibrate", "--scans", str(tmp_path / "four"), "--out", str(tmp_path / "c"), "--device", "cpu",
            "--subject-statistic", "region_peak", "--alpha", "0.2"]
    assert main(argv) == 0, capsys.readouterr().err
    contents = read(Bundle.load(tmp_path / "c"))
    assert contents.calibration(SCORER)["conformal"]["subject_statistic"] == "region_peak"
    assert "smallest p-value 0.2000" in describe(tmp_path / "c")["text"]
    assert contents.config["description"].endswith(
        "Site calibration: 4 healthy scans of four; a scan is flagged by its largest region peak, so p-values are at "
        "least 1/5."
    )
    records = {"voxel_threshold": 2.5, "records": [{"case_id": "a"}]}  # same sets, another rule: another version
    assert _site_version("1.9.0", [records], "combined") != _site_version("1.9.0", [records], "region_peak")


@pytest.mark.parametrize("case", ["out-is-model", "alpha", "missing"])
def test_bad_options_are_refused_before_any_work(tmp_path, capsys, case):
    argv = {
        "out-is-model": ["--scans", str(tmp_path), "--model", str(MODEL), "--out", str(MODEL)],
        "alpha": ["--scans", str(tmp_path), "--out", str(tmp_path / "b"), "--alpha", "1.5"],
        "missing": ["--scans", str(tmp_path / "nowhere"), "--out", str(tmp_path / "b")],
    }[case]
    assert main(["calibrate", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """Four transformed copies of the IXI sample and one unreadable file, calibrated at alpha 0.4 (the combined
    rule's smallest p-value with 4 scans is 2/5) with ages for three scans; the output of the command, its bundle and the scans."""
    root = tmp_path_factory.mktemp("site")
    scans = root / "scans"
    write_site(scans, ["bias", "gain", "gamma", "noise"])
    (scans / "broken.nii.gz").write_bytes(b"not an image")
    (root / "ages.csv").write_text("case_id,age\nbias,34\ngain,51.5\ngamma,70\n")
    argv = ["calibrate", "--scans", str(scans), "--out", str(root / "bundle"), "--alpha", "0.4", "--description",
            "Scanner B", "--ages", str(root / "ages.csv"), "--device", "cpu"]
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return {"root": root, "code": code, "out": out.getvalue(), "err": err.getvalue(), "bundle": root / "bundle",
            "scans": scans, "argv": argv}


def test_bad_scans_are_listed_on_stderr_and_in_a_file_and_the_rest_used(site):
    assert site["code"] == 0, site["err"]
    assert "1 scan(s) failed the input checks" in site["err"] and "broken:" in site["err"]
    with open(site["root"] / "bundle.left-out.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["case_id"] for r in rows] == ["broken"] and "cannot be read" in rows[0]["reason"]
    assert "calibrated on 4 healthy scans of Scanner B (3 with an age)" in site["out"]


def test_the_new_bundle_holds_the_site_sets_and_keeps_the_model(site):
    bundle = Bundle.load(site["bundle"])  # verifies every SHA256 of the new manifest
    original = Bundle.load(MODEL)
    for name in ("encoder.safetensors", "latent_stats.safetensors", "scorers/gaussian4mm.safetensors"):
        assert bundle.manifest["files"][name] == original.manifest["files"][name]  # encoder and scorers untouched
    calibration = read(bundle).calibration(SCORER)
    entry = calibration["conformal"]
    assert entry["n_scans"] == 4 and entry["source"] == "Scanner B" and entry["case_ids"] == ["bias", "gain", "gamma", "noise"]
    assert entry["n_scans_with_age"] == 3 and calibration["site"]["n_left_out"] == 1
    assert calibration["voxel_threshold"] != read(original).calibration(SCORER)["voxel_threshold"]
    assert "site's healthy brain voxels (4 scans)" in calibration["voxel_threshold_rule"]
    arrays = bundle.arrays(SETS_FILE)
    assert arrays[f"{SCORER}.region_max"].shape == (4,) and np.isnan(arrays[f"{SCORER}.ages"][3])
    assert bundle.manifest["model_version"].startswith(original.manifest["model_version"] + "+site.")
    deciding = read(bundle).config.get("decision_scorers", {}).get(SCORER, SCORER)  # 1.10.0: it is calibrated too
    assert read(bundle).calibration(deciding)["conformal"]["source"] == "Scanner B"
    assert (MODEL / "manifest.json").read_text() == (original.folder / "manifest.json").read_text()
    info = describe(site["bundle"])
    assert "calibration: Scanner B (4 scans); smallest p-value 0.4000" in info["text"]
    assert "calibration: IXI (118 scans); smallest p-value 0.0168" in describe(MODEL)["text"]


def test_detect_with_the_site_bundle_names_its_calibration_and_reproduces_the_calibration_record(site, tmp_path):
    """A calibration scan detected with the new bundle: its largest region peak is the one calibration recorded for
    it (the same pipeline), and its p-value counts it among the calibration scans."""
    out = tmp_path / "det"
    assert main(["detect", str(site["scans"] / "gain.nii.gz"), "--out", str(out), "--model", str(site["bundle"]),
                 "--device", "cpu", "--progress", "none", "--alpha", "0.4"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["conformal"]["calibration_source"] == "Scanner B (4 scans)"
    arrays = Bundle.load(site["bundle"]).arrays(SETS_FILE)
    deciding = summary["model"]["decision_scorer"] or SCORER  # the map whose sets decide (1.10.0: another scorer)
    region_max, subject_scores = arrays[f"{deciding}.region_max"], arrays[f"{deciding}.subject_scores"]
    assert summary["subject_region_peak"] == pytest.approx(region_max[1], rel=1e-6)
    assert summary["subject_score"] == pytest.approx(subject_scores[1], rel=1e-6)
    p_map, p_peak = p_value(summary["subject_score"], subject_scores), p_value(summary["subject_region_peak"], region_max)
    assert summary["subject_p_value"] == pytest.approx(min(1.0, 2 * min(p_map, p_peak)))  # the combined rule
    assert summary["voxel_threshold"] == pytest.approx(read(Bundle.load(site["bundle"])).calibration(SCORER)["voxel_threshold"])


def test_batch_scores_name_the_calibration(site, tmp_path):
    scans = tmp_path / "one"
    scans.mkdir()
    shutil.copy(site["scans"] / "gain.nii.gz", scans)
    assert main(["batch", str(scans), "--out", str(tmp_path / "cohort"), "--model", str(site["bundle"]),
                 "--device", "cpu", "--progress", "none", "--export", "none"]) == 0
    with open(tmp_path / "cohort" / "scores.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows[0]["calibration"] == "Scanner B (4 scans)"


def test_an_existing_out_is_refused_without_overwrite(site, capsys):
    assert main(site["argv"]) == 2
    assert "exists; choose a new folder or pass --overwrite" in capsys.readouterr().err


def test_a_decision_scorer_is_calibrated_on_the_site_too(tmp_path, capsys):
    """A bundle whose scan decision comes from another scorer (``decision_scorers``): both scorers get the site's
    sets and voxel thresholds, else the site's p-values would still be the other calibration's."""
    from tests.score.decision_bundle import DECIDES, decision_bundle

    model = decision_bundle(MODEL, tmp_path / "m", 0.0)
    write_site(tmp_path / "four", ["bias", "gain", "gamma", "noise"])
    argv = ["calibrate", "--scans", str(tmp_path / "four"), "--out", str(tmp_path / "c"), "--device", "cpu",
            "--model", str(model), "--subject-statistic", "region_peak", "--alpha", "0.2", "--description", "four"]
    assert main(argv) == 0, capsys.readouterr().err
    bundle = Bundle.load(tmp_path / "c")
    contents = read(bundle)
    metrics = bundle.json("metrics.json")
    for name, key in [(SCORER, "site_calibration"), (DECIDES, "site_calibration_decision")]:
        conformal = contents.calibration(name)["conformal"]
        assert conformal["source"] == "four" and conformal["n_scans"] == 4, name
        assert conformal["subject_statistic"] == "region_peak"
        assert metrics[key]["scorer"] == name and metrics[key]["n_scans"] == 4
        assert bundle.arrays(SETS_FILE)[f"{name}.subject_scores"].shape == (4,)
    assert contents.calibration(DECIDES)["voxel_threshold"] != 3.0  # the made-up threshold was replaced
    assert contents.config["decision_scorers"] == {SCORER: DECIDES}
