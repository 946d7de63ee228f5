"""Export to a folder (NIfTI, NRRD, .seg.nrrd, summary) re-read equal; the nodes keep their own storage."""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk
import slicer

from tests.slicer_gui import SAMPLE, export, nodes, review

pytestmark = pytest.mark.mrml


@pytest.mark.parametrize("fileFormat", ["nifti", "nrrd"])
def test_export_to_a_folder_reads_back_equal(loaded, tmp_path, fileFormat):
    logic, heat, label = loaded.context.logic, loaded.heatmap, loaded.label
    summary = logic.review.rethreshold(heat, label, float(loaded.outcome.summary["voxel_threshold"]) * 1.1)
    segmentation = logic.review.createSegmentation(label, loaded.inputVolume)
    written = logic.exporter.exportResults(tmp_path, heat, label, fileFormat, segmentationNode=segmentation)
    suffix = export.FORMATS[fileFormat]
    assert [p.name for p in written] == [
        f"labelmap{suffix}",
        f"heatmap{suffix}",
        "segmentation.seg.nrrd",
        "summary.json",
    ]
    assert json.loads((tmp_path / "summary.json").read_text()) == summary  # the re-thresholded summary
    for node, name, labelmap in ((label, "labelmap", True), (heat, "heatmap", False)):
        path = tmp_path / f"{name}{suffix}"
        again = logic.nodes.readVolume(path, f"re-read {name}", labelmap=labelmap)
        assert np.array_equal(nodes.array_of(again), nodes.array_of(node)), path.name
        assert np.allclose(nodes.ijk_to_ras(again), nodes.ijk_to_ras(node), atol=1e-4)
        image = sitk.ReadImage(str(path))  # and outside Slicer: same voxels at the same physical places
        expected = nodes.sitk_image(node)
        resampled = sitk.Resample(image, expected, sitk.Transform(), sitk.sitkNearestNeighbor)
        assert np.array_equal(sitk.GetArrayFromImage(resampled), nodes.array_of(node)), path.name
    assert heat.GetStorageNode() is None and label.GetStorageNode() is None  # not re-pointed at the export
    reread = loaded.context.scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "re-read segmentation")
    storage = slicer.vtkMRMLSegmentationStorageNode()
    storage.SetFileName(str(tmp_path / "segmentation.seg.nrrd"))
    assert storage.ReadData(reread)
    assert reread.GetSegmentation().GetNthSegment(0).GetName() == review.SEGMENT_NAME
    assert np.array_equal(logic.review.segmentationArray(reread, label) != 0, nodes.array_of(label) != 0)


def test_export_refuses_an_unknown_format_and_dicom_seg_needs_a_series(loaded, tmp_path):
    logic = loaded.context.logic
    with pytest.raises(ValueError, match="format must be one of"):
        logic.exporter.exportResults(tmp_path, loaded.heatmap, loaded.label, "mha")
    assert export.dicom_source_files(loaded.inputVolume) == []  # read from NIfTI: no DICOM SEG offered


def test_dicom_seg_export_for_an_input_read_from_a_dicom_series(mrml, sample_detection, tmp_path):
    """Export offers a DICOM SEG when the input came from a DICOM series; its frames equal the label map."""
    import locale

    pytest.importorskip("highdicom", reason="DICOM SEG export needs the dicom extra (highdicom)")
    from tests.outputs.test_dicom_seg import hd, pydicom, seg_volume, write_series
    from tests.slicer.conftest import saved_outcome

    saved = locale.setlocale(locale.LC_ALL)
    try:
        series = tmp_path / "dicom"
        uids = write_series(sitk.ReadImage(str(SAMPLE)), series)
        volume = mrml.logic.nodes.readVolume(series, "DICOM scan")  # the folder: files in slice order
        reference = mrml.logic.nodes.readVolume(SAMPLE, "NIfTI scan")  # the series was written from the sample
        assert np.allclose(nodes.ijk_to_ras(volume), nodes.ijk_to_ras(reference), atol=1e-4)
        files = export.dicom_source_files(volume)
        assert sorted(files) == sorted(series.iterdir())
        heat, label = mrml.logic.loader.loadResults(saved_outcome(sample_detection), volume)
        assert np.allclose(nodes.ijk_to_ras(label), nodes.ijk_to_ras(volume), atol=1e-4)
        written = mrml.logic.exporter.exportResults(tmp_path / "out", heat, label, dicomSeries=files)
        assert written[-1] == tmp_path / "out" / "labelmap.seg.dcm"
        seg = hd.seg.segread(written[-1])
        sources = {str(d.SOPInstanceUID): d for d in (pydicom.dcmread(p) for p in series.iterdir())}
        assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == uids["series"]
        segment = seg.get_segment_description(1)
        assert segment.algorithm_identification[0].AlgorithmName == sample_detection.outcome.summary["model"]["name"]
        expected = sitk.ReadImage(str(sample_detection.files / "labelmap.nii.gz"))  # the CLI's label map
        assert np.array_equal(seg_volume(seg, expected, sources), sitk.GetArrayFromImage(expected))
        assert sitk.GetArrayFromImage(expected).sum() == int(nodes.array_of(label).sum()) > 0
    finally:
        locale.setlocale(locale.LC_ALL, saved)
    assert export.dicom_source_files(reference) == []
