"""The review command's plain-Python half: reading results folders, the file route's path check, re-threshold, save,
and the command's one-line errors. No browser and no Slicer needed."""

from __future__ import annotations

import csv
import hashlib
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from LatentAnomalyLib.cli import main as cli
from LatentAnomalyLib.errors import InputError
from LatentAnomalyLib.score.components import label_components
from LatentAnomalyReview import INSTALL_HINT
from LatentAnomalyReview.case_data import CaseData
from LatentAnomalyReview.files import resolve_request
from LatentAnomalyReview.results import load_results

from .conftest import cli as cli_command


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.slow  # the batch_results fixture runs batch once per session (about 30 s)
def test_batch_folder_cases_in_scores_order(batch_results: Path) -> None:
    results = load_results(batch_results)
    with (batch_results / "scores.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert results.kind == "batch"
    assert results.has_p_value == any(r.get("p_value") for r in rows)
    assert [c.case_id for c in results.cases] == [r["case_id"] for r in rows]
    assert [c.row()["flagged"] for c in results.cases] == [r["flagged"] for r in rows]
    assert all(c.viewable for c in results.cases)


@pytest.mark.slow  # the batch_results fixture runs batch once per session (about 30 s)
def test_detect_folder_and_p_value_column(batch_results: Path, tmp_path: Path) -> None:
    case = load_results(batch_results / "IXI_sample_T1")
    assert case.kind == "detect" and [c.case_id for c in case.cases] == ["IXI_sample_T1"]
    copy = tmp_path / "batch"
    copy.mkdir()
    with (batch_results / "scores.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    with (copy / "scores.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["case_id", "subject_score", "flagged", "p_value"])
        writer.writeheader()
        for i, row in enumerate(rows):
            writer.writerow({"case_id": row["case_id"], "subject_score": row["subject_score"],
                             "flagged": row["flagged"], "p_value": 0.01 * (i + 1)})  # fmt: skip
    (copy / rows[0]["case_id"]).symlink_to(batch_results / rows[0]["case_id"])
    results = load_results(copy)
    assert results.has_p_value and [c.row()["p_value"] for c in results.cases] == ["0.01", "0.02"]
    assert results.cases[0].viewable and not results.cases[1].viewable
    assert results.cases[1].note == "images not exported"


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda p: p / "absent", "no such results folder"),
        (lambda p: (p / "file.txt").write_text("x") and p / "file.txt", "not a folder"),
        (lambda p: p, "not a detect or batch output folder"),
        (lambda p: (p / "summary.json").write_text("{") and p, "unreadable summary"),
        (lambda p: (p / "summary.json").write_text('{"voxel_threshold": 1}') and p, "no heatmap image"),
        (lambda p: (p / "scores.csv").write_text("case_id,score\na,1\n") and p, "no subject_score, flagged column"),
        (lambda p: (p / "scores.csv").write_text("case_id,subject_score,flagged\n") and p, "no cases"),
        (lambda p: (p / "scores.csv").write_text("case_id,subject_score,flagged\na,1,yes\n") and p, "no case has"),
        (lambda p: (p / "scores.csv").write_text("case_id,subject_score,flagged\n../x,1,yes\n") and p, "case_id"),
    ],
)
def test_malformed_results_folders(tmp_path: Path, setup, message: str) -> None:
    with pytest.raises(InputError, match=message):
        load_results(setup(tmp_path))


@pytest.mark.slow  # the batch_results fixture runs batch once per session (about 30 s)
def test_file_route_serves_only_the_results_folder(batch_results: Path, tmp_path: Path) -> None:
    assert resolve_request(batch_results, "scores.csv") == (200, (batch_results / "scores.csv").resolve())
    assert resolve_request(batch_results, "IXI_sample_T1/summary.json")[0] == 200
    assert resolve_request(batch_results, "IXI_sample_T1/absent.json") == (404, None)
    for tail in ("../x", "..%2F..%2Fetc%2Fpasswd", "/etc/passwd", "%2Fetc%2Fpasswd", ".records/x.json", "a/../../x"):
        assert resolve_request(batch_results, tail) == (403, None), tail
    (batch_results / "outside-link").symlink_to(tmp_path)
    try:
        assert resolve_request(batch_results, "outside-link/anything")[0] == 403
    finally:
        (batch_results / "outside-link").unlink()


@pytest.mark.slow  # the batch_results fixture runs batch once per session (about 30 s)
def test_rethreshold_matches_detect_and_save_keeps_the_original(batch_results: Path) -> None:
    results = load_results(batch_results)
    case = next(c for c in results.cases if c.case_id == "MSLUB_patient07_T1")
    data = CaseData.load(case, results.root)
    original = sitk.GetArrayFromImage(sitk.ReadImage(str(case.folder / "labelmap.nii.gz")))
    assert data.scan_found and data.scan.shape == data.heatmap.shape
    data.rethreshold(data.threshold)
    assert np.array_equal(data.labels, original > 0)  # same function and settings as detect
    summary = json.loads((case.folder / "summary.json").read_text())
    assert len(data.components) == summary["n_components"]
    low, high, _ = data.threshold_range()
    assert 0.0 <= low < data.threshold < high == pytest.approx(data.peak)
    for threshold in (low, data.threshold, 0.5 * (data.threshold + high), high + 1.0):
        data.rethreshold(threshold)  # on the regions' bounding box: the same as label_components on the whole grid
        labels, components = label_components(data.heatmap, threshold, data.reference, data.min_ml)
        assert np.array_equal(data.labels, labels) and data.components == components
    data.rethreshold(summary["voxel_threshold"])
    before = _sha(case.folder / "labelmap.nii.gz")
    data.rethreshold(low + 0.8 * (data.threshold - low))  # lower threshold: more voxels
    assert data.labels.sum() > original.sum()
    saved = data.save_reviewed()
    assert saved.name == "labelmap_reviewed.nii.gz" and _sha(case.folder / "labelmap.nii.gz") == before
    written = sitk.ReadImage(str(saved))
    assert int(sitk.GetArrayFromImage(written).sum()) == int(data.labels.sum())
    assert written.GetSpacing() == data.reference.GetSpacing() and written.GetOrigin() == data.reference.GetOrigin()
    record = json.loads((case.folder / "labelmap_reviewed.json").read_text())
    assert record["voxels"] == int(data.labels.sum()) and record["voxel_threshold"] == pytest.approx(data.threshold)
    assert not [p for p in case.folder.iterdir() if p.name.startswith(".")]  # no temporary file left


def test_review_errors_are_one_line(tmp_path: Path) -> None:
    done = subprocess.run([*cli_command(), "review", str(tmp_path / "absent")], capture_output=True, text=True)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip().splitlines() == [f"error: {tmp_path / 'absent'}: no such results folder"]


def test_review_without_the_extra_says_how_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "trame_slicer" else real(name, *a))
    assert cli.main(["review", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [f"error: {INSTALL_HINT}"]


@pytest.mark.slow  # the batch_results fixture runs batch once per session (about 30 s)
def test_case_without_scan_and_with_an_empty_label_map(batch_results: Path, tmp_path: Path) -> None:
    import shutil

    folder = tmp_path / "case"
    shutil.copytree(batch_results / "IXI_sample_T1", folder)
    summary = json.loads((folder / "summary.json").read_text())
    summary["input"]["path"] = "nowhere/scan.nii.gz"
    (folder / "summary.json").write_text(json.dumps(summary))
    labels = sitk.ReadImage(str(folder / "labelmap.nii.gz"))
    empty = sitk.Image(labels.GetSize(), labels.GetPixelID())
    empty.CopyInformation(labels)
    sitk.WriteImage(empty, str(folder / "labelmap.nii.gz"))  # a valid label map with no region
    results = load_results(folder)
    data = CaseData.load(results.cases[0], results.root)
    assert not data.scan_found and not data.scan.any() and data.scan.shape == data.heatmap.shape
    assert data.labels.sum() == 0
    assert data.scan_window()[1] > data.scan_window()[0]


def test_smallest_region_comes_from_the_named_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from LatentAnomalyReview.case_data import min_component_ml
    from tests.bundle.tiny_bundle import write_tiny_bundle

    bundle = write_tiny_bundle(tmp_path / "m", {"s": {"min_component_ml": 0.5}}, name="m")
    monkeypatch.setenv("LATENT_ANOMALY_MODEL", str(bundle))
    assert min_component_ml({"model": {"name": "m", "scorer": "s"}}) == 0.5
    assert min_component_ml({"model": {"name": "other", "scorer": "s"}}) == 0.1  # another model: detect's default
    assert min_component_ml({"model": {"name": "m", "scorer": "absent"}}) == 0.1
