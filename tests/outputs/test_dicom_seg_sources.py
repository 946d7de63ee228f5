"""DICOM SEG from real-world series: what a series lacks is derived and said, what cannot be made is one warning
decided before the detection, and the DICOM libraries' warnings become the product's notes, not raw stderr lines."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from LatentAnomalyLib.cli.main import main
from tests.pacs.series import write_series

pydicom = pytest.importorskip("pydicom")
hd = pytest.importorskip("highdicom")


def small_image() -> sitk.Image:
    image = sitk.GetImageFromArray(np.arange(5 * 6 * 8, dtype=np.float32).reshape(5, 6, 8))
    image.SetSpacing((1.0, 1.5, 2.5))
    return image


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_missing_slice_thickness_and_patient_attributes_are_derived_and_said(tmp_path):
    from LatentAnomalyLib.outputs.dicom_seg import write_dicom_seg
    from LatentAnomalyLib.outputs.dicom_sources import seg_sources

    folder = tmp_path / "dicom"
    write_series(small_image(), folder, drop=("SliceThickness", "PatientID", "StudyID"))
    before = snapshot(folder)
    sources = seg_sources(sorted(folder.iterdir()))
    assert sources.derived == [
        "Slice Thickness 2.5 mm, from the spacing of the slice positions",
        "PatientID, StudyID left empty (absent from the series)",
    ]
    labels = np.zeros((5, 6, 8), np.uint8)
    labels[2, 1:3, 2:5] = 1
    seg = hd.seg.segread(write_dicom_seg(labels, folder, tmp_path / "seg.dcm", sources=sources))
    assert float(seg.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0].SliceThickness) == 2.5
    assert snapshot(folder) == before  # the input files are never changed


@pytest.mark.parametrize(
    ("dropped", "reason"),
    [("FrameOfReferenceUID", "no Frame of Reference UID"), ("ImageOrientationPatient", "no ImageOrientationPatient")],
)
def test_what_cannot_be_derived_makes_the_seg_unavailable(tmp_path, dropped, reason):
    from LatentAnomalyLib.outputs.dicom_sources import SegUnavailable, seg_sources

    folder = tmp_path / "dicom"
    write_series(small_image(), folder, drop=(dropped,))
    with pytest.raises(SegUnavailable, match=reason):
        seg_sources(sorted(folder.iterdir()))


def rewrite(folder: Path, **values: str) -> None:
    """Set attributes to values that pydicom would refuse to write (as a non-conformant scanner or PACS does)."""
    from pydicom import config

    saved = config.settings.writing_validation_mode, config.settings.reading_validation_mode
    config.settings.writing_validation_mode = config.settings.reading_validation_mode = config.IGNORE
    try:
        for path in folder.iterdir():
            dataset = pydicom.dcmread(path)
            for keyword, value in values.items():
                setattr(dataset, keyword, value)
            dataset.save_as(path)
    finally:
        config.settings.writing_validation_mode, config.settings.reading_validation_mode = saved


def test_library_warnings_become_notes_not_stderr_lines(tmp_path, capfd):
    from LatentAnomalyLib.outputs.dicom_seg import write_dicom_seg
    from LatentAnomalyLib.outputs.dicom_sources import seg_sources

    folder = tmp_path / "dicom"
    write_series(small_image(), folder)
    rewrite(folder, AccessionNumber="ACC-2026-000000012345")  # longer than the 16 characters of its VR
    capfd.readouterr()
    sources = seg_sources(sorted(folder.iterdir()))
    labels = np.zeros((5, 6, 8), np.uint8)
    labels[2, 2, 2] = 1
    write_dicom_seg(labels, folder, tmp_path / "seg.dcm", sources=sources)
    assert capfd.readouterr().err == ""  # without the collector pydicom prints a warning and a log line here
    assert "pydicom: The value length (22) exceeds the maximum length of 16 allowed for VR SH." in sources.notes
    assert len(sources.notes) == len(set(sources.notes)) and all(n.startswith("pydicom: ") for n in sources.notes)


def test_a_patient_sex_outside_the_standard_values_is_written_as_one_of_them_and_said(tmp_path):
    from LatentAnomalyLib.outputs.dicom_seg import write_dicom_seg
    from LatentAnomalyLib.outputs.dicom_sources import seg_sources

    folder = tmp_path / "dicom"
    write_series(small_image(), folder)
    rewrite(folder, PatientSex="Female")
    sources = seg_sources(sorted(folder.iterdir()))  # highdicom refuses "Female"
    assert sources.derived == ["Patient's Sex Female written as F"]
    seg = pydicom.dcmread(write_dicom_seg(np.ones((5, 6, 8), np.uint8), folder, tmp_path / "seg.dcm", sources=sources))
    assert seg.PatientSex == "F"


@pytest.mark.slow
def test_detect_on_a_series_without_slice_thickness_writes_the_seg_and_says_what_was_derived(
    tmp_path, ixi_sample, capsys
):
    series = tmp_path / "dicom"
    write_series(sitk.ReadImage(str(ixi_sample)), series, drop=("SliceThickness",))
    out = tmp_path / "out"
    argv = ["detect", str(series), "--out", str(out), "--device", "cpu", "--progress", "none", "--dicom-seg"]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "warning: DICOM SEG: Slice Thickness 2 mm, from the spacing of the slice positions" in err
    assert all(line.startswith(("warning: ", "note: ")) for line in err.splitlines())
    assert (out / "labelmap.seg.dcm").is_file()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["outputs"]["dicom_seg"] == str(out / "labelmap.seg.dcm")


@pytest.mark.slow
def test_a_series_that_cannot_carry_a_seg_keeps_its_detection_and_one_warning_decided_first(
    tmp_path, ixi_sample, capsys, monkeypatch
):
    import LatentAnomalyLib.outputs.dicom_sources as dicom_sources
    from LatentAnomalyLib.pipeline import Detector

    order: list[str] = []
    check, detect = dicom_sources.seg_sources, Detector.detect
    monkeypatch.setattr(dicom_sources, "seg_sources", lambda files: (order.append("seg check"), check(files))[1])
    monkeypatch.setattr(Detector, "detect", lambda self, image: (order.append("detection"), detect(self, image))[1])
    series = tmp_path / "dicom"
    write_series(sitk.ReadImage(str(ixi_sample)), series, drop=("FrameOfReferenceUID",))
    out = tmp_path / "out"
    argv = ["detect", str(series), "--out", str(out), "--device", "cpu", "--progress", "none", "--dicom-seg"]
    assert main(argv) == 0
    assert order == ["seg check", "detection"]
    assert sorted(p.name for p in out.iterdir()) == ["heatmap.nii.gz", "labelmap.nii.gz", "summary.json"]
    summary = json.loads((out / "summary.json").read_text())
    about_seg = [w for w in summary["warnings"] if "DICOM SEG" in w]
    assert about_seg == [
        "no DICOM SEG was written: the series has no Frame of Reference UID ties a segmentation to it; the other "
        "outputs are complete"
    ]
    assert "dicom_seg" not in summary["outputs"]
    assert f"warning: {about_seg[0]}" in capsys.readouterr().err
