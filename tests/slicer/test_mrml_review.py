"""Reviewing results on a real scene: threshold slider, regions table, jump, segmentation, ground truth."""

from __future__ import annotations

import json

import numpy as np
import pytest
import vtk

from LatentAnomalyLib.evaluation.metrics import dice_at, voxel_metrics
from tests.slicer_gui import nodes, review

pytestmark = pytest.mark.mrml


def _matrix(vtkMatrix) -> np.ndarray:
    return np.array([[vtkMatrix.GetElement(i, j) for j in range(4)] for i in range(4)])


def test_threshold_slider_changes_the_label_map_and_the_table_and_comes_back_exactly(loaded):
    logic, heat, label = loaded.context.logic, loaded.heatmap, loaded.label
    original = np.array(nodes.array_of(label))
    summary = review.summary_of(label)
    detected = float(summary["voxel_threshold"])
    assert len(logic.review.regionRows(label, summary)) == summary["n_components"] > 0
    peak = float(nodes.array_of(heat).max())
    higher = logic.review.rethreshold(heat, label, detected + 0.5 * (peak - detected))
    changed = np.array(nodes.array_of(label))
    assert np.count_nonzero(changed) < np.count_nonzero(original)
    assert not np.any(changed & ~original.astype(bool))  # a higher threshold only removes voxels
    assert higher["voxel_threshold"] > detected and higher["detected_voxel_threshold"] == detected
    assert review.summary_of(label) == higher  # the stored summary follows the label map
    rows = logic.review.regionRows(label, higher)
    assert len(rows) == higher["n_components"]
    assert sum(row.volume_ml for row in rows) == pytest.approx(higher["flagged_volume_ml"])
    display = heat.GetDisplayNode()  # the colour window follows the threshold
    assert display.GetLowerThreshold() > detected - 0.5 * (peak - detected)
    lower = logic.review.rethreshold(heat, label, detected - 0.25 * abs(detected))
    assert np.count_nonzero(nodes.array_of(label)) > np.count_nonzero(original)
    assert len(logic.review.regionRows(label, lower)) == lower["n_components"]
    back = logic.review.rethreshold(heat, label, detected)
    assert np.array_equal(nodes.array_of(label), original)
    assert back["n_components"] == summary["n_components"]
    assert back["flagged_volume_ml"] == pytest.approx(summary["flagged_volume_ml"])
    assert back["voxel_threshold_source"] == summary["voxel_threshold_source"]


def test_jump_to_a_region_puts_every_slice_view_through_its_centroid(loaded):
    logic, label = loaded.context.logic, loaded.label
    rows = logic.review.regionRows(label, review.summary_of(label))
    for row in rows[:2]:
        point = logic.review.jumpToRegion(row, label)
        assert point == pytest.approx(row.ras)
        for sliceNode in logic.display.sliceNodes():
            inSlice = np.linalg.inv(_matrix(sliceNode.GetSliceToRAS())) @ [*point, 1.0]
            assert inSlice[:3] == pytest.approx([0.0, 0.0, 0.0], abs=1e-3), sliceNode.GetName()
        # The centroid lies in the flagged region: the label map is set at (or next to) that voxel.
        ijk = np.linalg.inv(nodes.ijk_to_ras(label)) @ [*point, 1.0]
        i, j, k = np.round(ijk[:3]).astype(int)
        assert nodes.array_of(label)[max(k - 1, 0) : k + 2, max(j - 1, 0) : j + 2, max(i - 1, 0) : i + 2].any()
    assert logic.review.jumpToRegion(type(rows[0])(9, 1.0, None, None), label) is None


def test_label_map_to_segmentation_and_back(loaded):
    logic, label = loaded.context.logic, loaded.label
    segmentation = logic.review.createSegmentation(label, loaded.inputVolume)
    assert segmentation.IsA("vtkMRMLSegmentationNode")
    [segment] = [segmentation.GetSegmentation().GetNthSegment(0)]
    assert segmentation.GetSegmentation().GetNumberOfSegments() == 1
    assert segment.GetName() == review.SEGMENT_NAME and segment.GetColor() == pytest.approx(review.SEGMENT_COLOR)
    back = logic.review.segmentationArray(segmentation, label)
    assert np.array_equal(back != 0, nodes.array_of(label) != 0)
    assert loaded.context.scene.GetFirstNodeByName("__LatentAnomalyTemporary") is None


def _truth_node(scene, like, array):
    node = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "ground truth")
    matrix = vtk.vtkMatrix4x4()
    like.GetIJKToRASMatrix(matrix)
    node.SetIJKToRASMatrix(matrix)
    import slicer

    slicer.util.updateVolumeFromArray(node, array)
    return node


def test_ground_truth_comparison_equals_the_library_metrics(loaded):
    logic, heat, label = loaded.context.logic, loaded.heatmap, loaded.label
    heatmap, labels = np.array(nodes.array_of(heat)), np.array(nodes.array_of(label))
    truth = np.zeros(labels.shape, dtype=np.uint8)  # a "lesion": part of the flagged voxels and a box next to them
    k, j, i = np.argwhere(labels > 0)[0]
    truth[max(k - 3, 0) : k + 3, max(j - 3, 0) : j + 3, max(i - 3, 0) : i + 3] = 1
    truth[labels > 0] = np.where(np.arange(int((labels > 0).sum())) % 2 == 0, 1, 0).astype(np.uint8)
    brain = heatmap != 0
    ranking = voxel_metrics(heatmap[brain], (truth != 0)[brain])
    expected = {"dice": dice_at(labels != 0, truth != 0), "auroc": ranking["auroc"], "auprc": ranking["auprc"]}
    assert 0.0 < expected["dice"] < 1.0 and expected["auroc"] is not None
    fromLabel = logic.review.compareWithGroundTruth(heat, label, _truth_node(loaded.context.scene, heat, truth))
    assert {key: fromLabel[key] for key in expected} == pytest.approx(expected)
    assert fromLabel["n_truth_voxels"] == int(np.count_nonzero(truth & brain))
    truthNode = loaded.context.scene.GetFirstNodeByName("ground truth")
    segmentation = logic.review.createSegmentation(truthNode, heat)
    fromSegmentation = logic.review.compareWithGroundTruth(heat, label, segmentation)
    assert {key: fromSegmentation[key] for key in expected} == pytest.approx(expected)
    # A ground truth on another grid (half the voxels per axis) is compared in physical space.
    coarse = loaded.context.scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "coarse truth")
    matrix = nodes.ijk_to_ras(heat)
    matrix[:3, :3] *= 2.0
    vtkMatrix = vtk.vtkMatrix4x4()
    for r in range(4):
        for c in range(4):
            vtkMatrix.SetElement(r, c, matrix[r, c])
    coarse.SetIJKToRASMatrix(vtkMatrix)
    import slicer

    slicer.util.updateVolumeFromArray(coarse, np.ascontiguousarray(truth[::2, ::2, ::2]))
    onGrid = logic.review.groundTruthArray(coarse, heat)
    assert onGrid.shape == truth.shape
    assert np.array_equal(onGrid[::2, ::2, ::2], truth[::2, ::2, ::2])
    assert json.loads(label.GetAttribute(review.SUMMARY_ATTRIBUTE))["voxel_threshold"] == pytest.approx(
        loaded.outcome.summary["voxel_threshold"]
    )


def test_regions_table_and_text_show_p_values_at_the_calibrated_threshold_only(mrml, tmp_path, detect_run):
    """`detect --regions all` (every region above the calibrated voxel threshold, each with its p-value) loaded
    into a scene: the table shows the p-values; moving the threshold makes them n/a; going back finds them."""
    import shutil

    from tests.slicer_gui import SAMPLE, RunStatus, detection, results

    out = tmp_path / "detect"
    done = detect_run(SAMPLE, "--regions", "all")  # in this process, shared by the session
    assert done.code == 0
    shutil.copytree(done.folder, out)
    detected = json.loads((out / "summary.json").read_text())
    outcome = detection.DetectionOutcome(RunStatus.SUCCEEDED, 0, out, summary=detected)
    inputVolume = mrml.logic.nodes.readVolume(SAMPLE, "IXI sample")
    heat, label = mrml.logic.loader.loadResults(outcome, inputVolume)
    summary = review.summary_of(label)
    rows = mrml.logic.review.regionRows(label, summary)
    expected = sorted(detected["components"], key=lambda c: -c["volume_ml"])
    assert rows and [r.cells()[3] for r in rows] == [f"{c['p_value']:.3g}" for c in expected]
    assert [r.kept for r in rows] == [c["p_value"] <= detected["alpha"] for c in expected]
    text = mrml.logic.summaryText(summary)
    assert f"Subject p-value {detected['subject_p_value']:.3g} > alpha 0.05: not flagged" in text
    threshold = float(detected["voxel_threshold"])
    moved = mrml.logic.review.rethreshold(heat, label, threshold - 0.2)
    assert {r.cells()[3] for r in mrml.logic.review.regionRows(label, moved)} == {"n/a"}
    assert "Region p-values: n/a at this threshold" in mrml.logic.summaryText(moved)
    back = mrml.logic.review.rethreshold(heat, label, threshold)
    assert [r.cells()[3] for r in mrml.logic.review.regionRows(label, back)] == [r.cells()[3] for r in rows]
    assert "Region p-values" not in results.format_summary(back)


def test_user_threshold_regions_have_no_p_value(loaded):
    """The shared detection passes the voxel threshold (a user threshold): its regions get no p-value."""
    summary = review.summary_of(loaded.label)
    assert summary["voxel_threshold_source"] == "user" and summary["alpha"] is not None
    rows = loaded.context.logic.review.regionRows(loaded.label, summary)
    assert rows and {r.cells()[3] for r in rows} == {"n/a"}
    assert "Region p-values: none (a user voxel threshold" in loaded.context.logic.summaryText(summary)


def test_reset_of_a_calibrated_label_map_gives_detects_label_map_again(mrml, tmp_path, detect_run):
    """The module's default detection (the calibrated label map; none on the healthy sample, not flagged): moving
    the threshold shows regions; back at the detected threshold the label map is detect's again (empty)."""
    import shutil

    from tests.slicer_gui import SAMPLE, RunStatus, detection

    out = tmp_path / "detect"
    done = detect_run(SAMPLE)  # in this process, shared by the session
    assert done.code == 0
    shutil.copytree(done.folder, out)
    detected = json.loads((out / "summary.json").read_text())
    assert detected["regions"] == "calibrated" and detected["regions_not_kept"]
    outcome = detection.DetectionOutcome(RunStatus.SUCCEEDED, 0, out, summary=detected)
    heat, label = mrml.logic.loader.loadResults(outcome, mrml.logic.nodes.readVolume(SAMPLE, "IXI sample"))
    original = np.array(nodes.array_of(label))
    threshold = float(detected["voxel_threshold"])
    moved = mrml.logic.review.rethreshold(heat, label, threshold - 0.1)
    assert moved["n_components"] > detected["n_components"] and np.count_nonzero(nodes.array_of(label))
    back = mrml.logic.review.rethreshold(heat, label, threshold)
    assert np.array_equal(nodes.array_of(label), original)
    rows = mrml.logic.review.regionRows(label, back)
    assert back["n_components"] == detected["n_components"] and len([r for r in rows if r.shown]) == len(
        detected["components"]
    )
    assert len([r for r in rows if not r.shown]) == len(detected["regions_not_kept"])  # the near misses, apart


def _unflagged_copy(sample_detection, tmp_path, keep_regions: bool):
    """The shared detection as a scan not flagged: an empty label map, its regions moved to ``regions_not_kept``
    (or dropped, ``keep_regions`` False)."""
    import shutil

    import SimpleITK as sitk

    from tests.slicer.conftest import saved_outcome

    for path in sample_detection.files.iterdir():
        shutil.copy2(path, tmp_path / path.name)
    labels = sitk.ReadImage(str(tmp_path / "labelmap.nii.gz"))
    empty = sitk.Image(labels.GetSize(), labels.GetPixelID())
    empty.CopyInformation(labels)
    sitk.WriteImage(empty, str(tmp_path / "labelmap.nii.gz"))
    outcome = saved_outcome(sample_detection, tmp_path)
    regions = outcome.summary["components"]
    assert regions, "the shared detection has regions at the calibrated voxel threshold"
    outcome.summary = {**outcome.summary, "components": [], "n_components": 0, "subject_flagged": False,
                       "regions_not_kept": [{**r, "p_value": 0.2 + i / 100} for i, r in enumerate(regions)] if keep_regions else []}  # fmt: skip
    return outcome


def _through(logic, point) -> None:
    for sliceNode in logic.display.sliceNodes():
        inSlice = np.linalg.inv(_matrix(sliceNode.GetSliceToRAS())) @ [*point, 1.0]
        assert abs(inSlice[2]) < 1e-3, sliceNode.GetName()  # the slice plane passes through the point


def test_a_scan_not_flagged_opens_on_its_near_miss_and_lists_it(sample_detection, mrml, tmp_path):
    from tests.slicer_gui import SAMPLE

    outcome = _unflagged_copy(sample_detection, tmp_path, keep_regions=True)
    inputVolume = mrml.logic.nodes.readVolume(SAMPLE, "IXI sample")
    _heatmap, label = mrml.logic.loader.loadResults(outcome, inputVolume)
    assert "near miss" in mrml.logic.loader.lastFocus
    nearest = outcome.summary["regions_not_kept"][0]  # the smallest p-value
    _through(mrml.logic, nearest["centroid_ras_mm"])
    rows = mrml.logic.review.regionRows(label, review.summary_of(label))
    assert [r.shown for r in rows] == [False] * len(outcome.summary["regions_not_kept"])
    assert rows[0].ras == pytest.approx(nearest["centroid_ras_mm"]) and rows[0].cells()[0] == "1 (not shown)"


def test_a_scan_without_any_region_opens_on_its_hottest_voxel(sample_detection, mrml, tmp_path):
    from tests.slicer_gui import SAMPLE

    outcome = _unflagged_copy(sample_detection, tmp_path, keep_regions=False)
    inputVolume = mrml.logic.nodes.readVolume(SAMPLE, "IXI sample")
    heatmap, label = mrml.logic.loader.loadResults(outcome, inputVolume)
    assert mrml.logic.loader.lastFocus == "hottest voxel"
    array = np.asarray(nodes.array_of(heatmap))
    k, j, i = np.unravel_index(int(np.argmax(array)), array.shape)
    _through(mrml.logic, (nodes.ijk_to_ras(heatmap) @ [i, j, k, 1.0])[:3])
    assert mrml.logic.review.regionRows(label, review.summary_of(label)) == []
