"""DICOM SEG export: `detect --dicom-seg` on a DICOM series made from the committed sample, re-read with highdicom."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import SimpleITK as sitk

from LatentAnomalyLib.cli.main import main
from tests.pacs.series import write_series  # the tests' one DICOM series writer (test_mrml_export imports it from here)

pydicom = pytest.importorskip("pydicom")
hd = pytest.importorskip("highdicom")


def seg_volume(seg, labelmap: sitk.Image, sources: dict[str, object]) -> np.ndarray:
    """The SEG's segment 1 on the label map's grid, placing each frame through its geometry and source SOP."""
    shared = seg.SharedFunctionalGroupsSequence[0]
    orientation = np.array(shared.PlaneOrientationSequence[0].ImageOrientationPatient, dtype=float)
    spacing = np.array(shared.PixelMeasuresSequence[0].PixelSpacing, dtype=float)
    direction = np.array(labelmap.GetDirection()).reshape(3, 3)
    assert np.allclose(orientation, [*direction[:, 0], *direction[:, 1]], atol=1e-4)
    assert np.allclose(spacing[::-1], labelmap.GetSpacing()[:2])
    pixels = seg.pixel_array.reshape(-1, seg.Rows, seg.Columns)
    volume = np.zeros(sitk.GetArrayViewFromImage(labelmap).shape, np.uint8)
    for frame, item in zip(pixels, seg.PerFrameFunctionalGroupsSequence):
        identification = item if "SegmentIdentificationSequence" in item else shared  # shared with one segment
        assert identification.SegmentIdentificationSequence[0].ReferencedSegmentNumber == 1
        position = [float(v) for v in item.PlanePositionSequence[0].ImagePositionPatient]
        uid = item.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
        assert np.allclose(position, [float(v) for v in sources[uid].ImagePositionPatient], atol=1e-3)
        index = labelmap.TransformPhysicalPointToContinuousIndex(position)
        assert np.allclose(index[:2], 0, atol=1e-3) and abs(index[2] - round(index[2])) < 1e-3
        volume[round(index[2])] = frame
    return volume


@pytest.mark.slow
def test_detect_dicom_seg_equals_the_label_map(tmp_path, ixi_sample, capsys):
    series = tmp_path / "dicom"
    uids = write_series(sitk.ReadImage(str(ixi_sample)), series)
    out = tmp_path / "results"
    # --regions all: the voxel-threshold label map, which has flagged voxels on this healthy scan (model 1.5.0's
    # default calibrated map has none there)
    argv = ["detect", str(series), "--out", str(out), "--device", "cpu", "--progress", "none", "--dicom-seg"]
    argv += ["--regions", "all"]
    assert main(argv) == 0, capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == [
        "heatmap.nii.gz",
        "labelmap.nii.gz",
        "labelmap.seg.dcm",
        "summary.json",
    ]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["outputs"]["dicom_seg"] == str(out / "labelmap.seg.dcm")
    labelmap = sitk.ReadImage(str(out / "labelmap.nii.gz"))
    expected = sitk.GetArrayFromImage(labelmap)
    assert expected.sum() > 0  # the comparison below must cover flagged voxels

    seg = hd.seg.segread(out / "labelmap.seg.dcm")
    sources = {str(d.SOPInstanceUID): d for d in (pydicom.dcmread(p) for p in series.iterdir())}
    assert seg.SegmentationType == "BINARY"
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == uids["series"]
    assert seg.StudyInstanceUID == uids["study"] and seg.FrameOfReferenceUID == uids["frame"]
    assert {str(i.ReferencedSOPInstanceUID) for i in seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence} == set(
        sources
    )
    segment = seg.get_segment_description(1)
    assert segment.segment_label == "Anomaly"
    assert segment.algorithm_identification[0].AlgorithmName == summary["model"]["name"]
    assert segment.algorithm_identification[0].AlgorithmVersion == summary["model"]["version"]
    assert np.array_equal(seg_volume(seg, labelmap, sources), expected)
    # highdicom's own reading by source instance agrees (frames without flagged voxels read as empty)
    by_instance = seg.get_pixels_by_source_instance(
        list(sources), segment_numbers=[1], assert_missing_frames_are_empty=True
    )[..., 0]
    assert int(by_instance.sum()) == int(expected.sum())


def test_dicom_seg_on_a_nifti_input_is_refused_before_the_model_runs(tmp_path, ixi_sample, capsys, monkeypatch):
    import LatentAnomalyLib.bundle.model as model

    def no_model(*args, **kwargs):
        raise AssertionError("the model must not be loaded")

    monkeypatch.setattr(model.Model, "load", no_model)
    out = tmp_path / "o"
    assert main(["detect", str(ixi_sample), "--out", str(out), "--dicom-seg"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "--dicom-seg needs a DICOM series folder" in err[0]
    assert not out.exists()


def test_without_highdicom_one_line_names_the_extra(tmp_path, monkeypatch, capsys):
    series = tmp_path / "dicom"
    series.mkdir()
    monkeypatch.setitem(sys.modules, "highdicom", None)
    assert main(["detect", str(series), "--out", str(tmp_path / "o"), "--dicom-seg"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install latent-anomaly[dicom]" in err[0]


def test_write_dicom_seg_from_an_array_and_a_file_list(tmp_path):
    from LatentAnomalyLib.outputs.dicom_seg import write_dicom_seg

    image = sitk.GetImageFromArray(np.arange(6 * 8 * 5, dtype=np.float32).reshape(5, 6, 8))
    image.SetSpacing((1.0, 1.5, 2.0))
    image.SetOrigin((-3.0, 4.0, 10.0))
    uids = write_series(image, tmp_path / "dicom")
    files = sorted(str(p) for p in (tmp_path / "dicom").iterdir())
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(list(reader.GetGDCMSeriesFileNames(str(tmp_path / "dicom"))))
    grid = reader.Execute()
    labels = np.zeros((5, 6, 8), np.uint8)
    labels[1, 2:4, 3:7] = 1
    labels[3, 0, 0] = 1
    path = write_dicom_seg(labels, files, tmp_path / "seg.dcm", model_name="m", model_version="9")
    seg = hd.seg.segread(path)
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == uids["series"]
    sources = {str(d.SOPInstanceUID): d for d in (pydicom.dcmread(p) for p in files)}
    labelmap = sitk.GetImageFromArray(labels)
    labelmap.CopyInformation(grid)
    assert np.array_equal(seg_volume(seg, labelmap, sources), labels)
    assert len(seg.PerFrameFunctionalGroupsSequence) == 2  # empty frames omitted
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())  # no temporary file left


def test_a_label_map_on_another_grid_is_refused(tmp_path):
    from LatentAnomalyLib.errors import InputError
    from LatentAnomalyLib.outputs.dicom_seg import write_dicom_seg

    image = sitk.GetImageFromArray(np.ones((4, 6, 8), np.float32))
    write_series(image, tmp_path / "dicom")
    other = sitk.Image(8, 6, 4, sitk.sitkUInt8)
    other.SetSpacing((2.0, 1.0, 1.0))
    with pytest.raises(InputError, match="not on this DICOM series' grid"):
        write_dicom_seg(other, tmp_path / "dicom", tmp_path / "seg.dcm")
    assert not (tmp_path / "seg.dcm").exists()


@pytest.mark.slow
def test_batch_exports_a_seg_for_dicom_cases_only(tmp_path, ixi_sample, capsys):
    cohort = tmp_path / "cohort"
    uids = write_series(sitk.ReadImage(str(ixi_sample)), cohort / "dicom_case")
    (cohort / "nifti_case.nii.gz").write_bytes(ixi_sample.read_bytes())
    out = tmp_path / "batch"
    argv = ["batch", str(cohort), "--out", str(out), "--export", "all", "--dicom-seg", "--device", "cpu"]
    assert main([*argv, "--progress", "none"]) == 0, capsys.readouterr().err
    assert not (out / "nifti_case" / "labelmap.seg.dcm").exists()
    case = out / "dicom_case"
    summary = json.loads((case / "summary.json").read_text())
    assert summary["outputs"]["dicom_seg"] == str(case / "labelmap.seg.dcm")
    seg = hd.seg.segread(case / "labelmap.seg.dcm")
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == uids["series"]
    sources = {str(d.SOPInstanceUID): d for d in (pydicom.dcmread(p) for p in (cohort / "dicom_case").iterdir())}
    labelmap = sitk.ReadImage(str(case / "labelmap.nii.gz"))
    assert np.array_equal(seg_volume(seg, labelmap, sources), sitk.GetArrayFromImage(labelmap))
