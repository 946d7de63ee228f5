"""`latent-anomaly batch`: ranking, export, resume, failures, workers, shards, determinism (Dask: tests/cohort).

Real detections are few (each takes seconds on CPU): two small real scans (the committed 2 mm
IXI sample and a crop of it), the sample with a bright sphere painted in (which the model flags) and a box
phantom (not a head: warned about, not flagged by the region rule of models 1.6.0 and 1.7.0).
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from LatentAnomalyLib.cli.main import main
from LatentAnomalyLib.cohort.inputs import discover, read_list
from LatentAnomalyLib.errors import InputError
from LatentAnomalyLib.progress import BatchProgress

CPU = ["--device", "cpu", "--progress", "none"]


def _rows(table: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(table.read_text().splitlines()))


def _heatmap(folder: Path) -> np.ndarray:
    return sitk.GetArrayFromImage(sitk.ReadImage(str(folder / "heatmap.nii.gz")))


@pytest.fixture(scope="module")
def two_scans(tmp_path_factory, ixi_sample) -> Path:
    """A folder with two small real scans: the IXI sample and a crop of it (another grid)."""
    folder = tmp_path_factory.mktemp("two_scans")
    image = sitk.ReadImage(str(ixi_sample))
    sitk.WriteImage(image, str(folder / "ixi.nii.gz"))
    sitk.WriteImage(image[4:, :, 2:], str(folder / "ixi_crop.nii.gz"))
    return folder


@pytest.fixture(scope="module")
def one_worker(tmp_path_factory, two_scans) -> Path:
    """`--workers 1 --export all` over the two scans: the reference for parallel runs."""
    out = tmp_path_factory.mktemp("one_worker") / "out"
    assert main(["batch", str(two_scans), "--out", str(out), "--export", "all", *CPU]) == 0
    return out


def _box_phantom(path: Path) -> Path:
    box = np.zeros((90, 120, 120), np.float32)
    box[20:70, 30:90, 30:90] = 100
    box += np.random.default_rng(0).normal(0, 2, box.shape).astype(np.float32)
    image = sitk.GetImageFromArray(box)
    image.SetSpacing((2.0, 2.0, 2.0))
    sitk.WriteImage(image, str(path))
    return path


def _sphere_lesion(ixi_sample: Path, path: Path) -> Path:
    """The IXI sample with a bright 12 mm-radius sphere in the right hemisphere."""
    image = sitk.ReadImage(str(ixi_sample))
    array = sitk.GetArrayFromImage(image).astype(np.float32)
    spacing = image.GetSpacing()[::-1]
    grid = np.ogrid[tuple(slice(0, n) for n in array.shape)]
    centre = (array.shape[0] // 2, array.shape[1] // 2, array.shape[2] // 2 + int(25 / spacing[2]))
    radius = np.sqrt(sum(((g - c) * d) ** 2 for g, c, d in zip(grid, centre, spacing)))
    array[radius < 12] = 1.5 * np.percentile(array, 99.5)
    out = sitk.GetImageFromArray(array)
    out.CopyInformation(image)
    sitk.WriteImage(out, str(path))
    return path


def test_ranks_exports_flagged_records_failures_and_resumes(tmp_path, ixi_sample, capsys):
    scans = tmp_path / "scans"
    scans.mkdir()
    _sphere_lesion(ixi_sample, scans / "lesion.nii.gz")
    _box_phantom(scans / "box.nii.gz")
    (scans / "broken.nii.gz").write_bytes(b"\x1f\x8b not really gzip")
    (scans / "notes.txt").write_text("not a scan: skipped")
    out = tmp_path / "out"
    assert main(["batch", str(scans), "--out", str(out), *CPU]) == 3
    captured = capsys.readouterr()
    assert "skipped 1 file(s)" in captured.err
    assert "failed: broken:" in captured.err
    rows = _rows(out / "scores.csv")
    assert [r["case_id"] for r in rows] == ["lesion", "box", "broken"]  # by p-value, failures last
    assert float(rows[0]["p_value"]) < float(rows[1]["p_value"])
    assert [r["rank"] for r in rows] == ["1", "2", ""]
    lesion, box, broken = rows
    assert lesion["flagged"] == "yes" and box["flagged"] == "no"
    assert float(lesion["p_value"]) <= float(lesion["alpha"]) == 0.05 < float(box["p_value"])
    assert float(lesion["largest_region_peak"]) > float(box["largest_region_peak"])  # model 1.6.0's statistic
    assert lesion["status"] == box["status"] == "done" and broken["status"] == "failed"
    assert "broken.nii.gz" in broken["error"] and "\n" not in broken["error"]
    assert box["warnings"]  # a box is not a head: its contrast warning is kept in the table
    # Only the flagged scan keeps its images; every scan has a record for resuming.
    assert sorted(p.name for p in (out / "lesion").iterdir()) == ["heatmap.nii.gz", "labelmap.nii.gz", "summary.json"]
    assert not (out / "box").exists() and not (out / "broken").exists()
    summary = json.loads((out / "lesion" / "summary.json").read_text())
    assert summary["outputs"]["heatmap"] == str(out / "lesion" / "heatmap.nii.gz")
    assert summary["n_components"] >= 1  # a flagged scan shows its regions
    assert sorted(p.name for p in (out / ".records").iterdir()) == ["box.json", "broken.json", "lesion.json"]
    scores = json.loads((out / "scores.json").read_text())
    assert [r["case_id"] for r in scores["rows"]] == ["lesion", "box", "broken"]
    assert not (out / ".partial").exists()

    # Restart after an "interruption" that lost box's record: only box (and the failure) run again.
    lesion_record = (out / ".records" / "lesion.json").stat().st_mtime_ns
    (out / ".records" / "box.json").unlink()
    assert main(["batch", str(scans), "--out", str(out), *CPU]) == 3
    assert "1 done, 1 already done, 1 failed" in capsys.readouterr().out
    assert (out / ".records" / "lesion.json").stat().st_mtime_ns == lesion_record
    again = {r["case_id"]: r for r in _rows(out / "scores.csv")}
    assert again["box"]["subject_score"] == box["subject_score"]  # deterministic, too
    assert again["lesion"]["subject_score"] == lesion["subject_score"]


def test_workers_give_bit_identical_results(tmp_path, two_scans, one_worker):
    out = tmp_path / "out"
    assert main(["batch", str(two_scans), "--out", str(out), "--export", "all", "--workers", "2", *CPU]) == 0
    for case in ("ixi", "ixi_crop"):
        assert np.array_equal(_heatmap(out / case), _heatmap(one_worker / case)), case
    assert [r["subject_score"] for r in _rows(out / "scores.csv")] == [
        r["subject_score"] for r in _rows(one_worker / "scores.csv")
    ]


def test_detect_is_deterministic(tmp_path, ixi_sample, detect_run):
    """The same scan twice in one process: bit-identical (ITK's threaded registration was not).

    The first run is the session's shared `detect` of the sample (same options), copied; the second run writes
    into the copy, which needs ``--overwrite``.
    """
    out = tmp_path / "out"
    first = detect_run(ixi_sample)
    assert first.code == 0
    shutil.copytree(first.folder, out)
    first_heat = _heatmap(out)
    first_labels = sitk.GetArrayFromImage(sitk.ReadImage(str(out / "labelmap.nii.gz")))
    (out / "summary.json").write_text("{}")
    assert main(["detect", str(ixi_sample), "--out", str(out), "--overwrite", *CPU]) == 0
    assert json.loads((out / "summary.json").read_text())["subject_score"] > 0  # really replaced
    assert np.array_equal(_heatmap(out), first_heat)
    assert np.array_equal(sitk.GetArrayFromImage(sitk.ReadImage(str(out / "labelmap.nii.gz"))), first_labels)


def test_manual_shard_writes_its_own_table(tmp_path, capsys):
    """``--shard 2/3`` runs every third case from the second; all cases here fail fast (missing files)."""
    paths = [str(tmp_path / f"scan{i}.nii.gz") for i in range(7)]
    out = tmp_path / "out"
    assert main(["batch", *paths, "--out", str(out), "--shard", "2/3", *CPU]) == 3
    rows = _rows(out / "scores-shard-2-of-3.csv")
    assert [r["case_id"] for r in rows] == ["scan1", "scan4"]
    assert all(r["status"] == "failed" and "no such file" in r["error"] for r in rows)
    assert not (out / "scores.csv").exists()


def test_inputs_from_folder_csv_and_paths(tmp_path):
    folder = tmp_path / "cohort"
    (folder / "dicom_case").mkdir(parents=True)
    (folder / "dicom_case" / "IM0001").write_bytes(b"x")
    (folder / "b.nii.gz").write_bytes(b"x")
    (folder / "a.mha").write_bytes(b"x")
    (folder / "readme.md").write_text("x")
    cases, notes = discover([str(folder)])
    assert [c.case_id for c in cases] == ["a", "b", "dicom_case"]
    assert notes and "skipped 1 file" in notes[0]
    listing = tmp_path / "list.csv"
    listing.write_text("case_id,path\nfirst,cohort/b.nii.gz\n,/elsewhere/c.nrrd\n")
    listed = read_list(listing)
    assert [(c.case_id, c.path) for c in listed] == [
        ("first", str(tmp_path / "cohort" / "b.nii.gz")),
        ("c", "/elsewhere/c.nrrd"),
    ]
    both, _ = discover([str(listing), str(folder / "a.mha")])
    assert [c.case_id for c in both] == ["first", "c", "a"]
    with pytest.raises(InputError, match="not unique"):
        discover([str(folder), str(folder / "a.mha")])
    with pytest.raises(InputError, match="holds no scans"):
        discover([str(_empty(tmp_path))])


def _empty(tmp_path: Path) -> Path:
    folder = tmp_path / "nothing"
    (folder / "sub").mkdir(parents=True)
    return folder


def test_batch_progress_lines_and_bar(capsys):
    import io

    lines = io.StringIO()
    progress = BatchProgress(4, "lines", stream=lines)
    progress.skipped(1)
    progress.case_done("a", "done")
    progress.case_done("b", "failed")
    text = lines.getvalue().splitlines()
    assert "1 of 4 case(s) already done" in text[0]
    assert text[1].startswith("batch 2/4 a done; eta ") and text[2].startswith("batch 3/4 b failed; eta ")
    bar = io.StringIO()
    progress = BatchProgress(2, "bar", stream=bar)
    progress.case_done("a", "done")
    progress.case_done("b", "done")
    assert bar.getvalue().startswith("\r") and "2/2" in bar.getvalue() and bar.getvalue().endswith("\n")
