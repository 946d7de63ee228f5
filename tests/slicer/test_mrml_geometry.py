"""Results keep the input's grid in the scene: also for an oblique scan and for an input under a transform."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest
import SimpleITK as sitk
import vtk

from tests.slicer.conftest import saved_outcome
from tests.slicer_gui import SAMPLE, nodes, selftest

pytestmark = pytest.mark.mrml


def _matrix(values) -> vtk.vtkMatrix4x4:
    matrix = vtk.vtkMatrix4x4()
    for i in range(4):
        for j in range(4):
            matrix.SetElement(i, j, float(values[i][j]))
    return matrix


def _rotation(degrees: float, axis: int, translation=(0.0, 0.0, 0.0)) -> np.ndarray:
    angle = math.radians(degrees)
    c, s = math.cos(angle), math.sin(angle)
    i, j = [a for a in range(3) if a != axis]
    rotation = np.eye(4)
    rotation[i, i], rotation[i, j], rotation[j, i], rotation[j, j] = c, -s, s, c
    rotation[:3, 3] = translation
    return rotation


def test_results_of_an_oblique_scan_keep_its_ijk_to_ras(mrml, sample_detection, tmp_path):
    logic = mrml.logic
    oblique = _rotation(25, 2) @ _rotation(-10, 0)  # rotated about S, then tilted about R
    volume = logic.nodes.readVolume(SAMPLE, "oblique scan")
    volume.SetIJKToRASMatrix(_matrix(oblique @ nodes.ijk_to_ras(volume)))
    # The file the CLI gets is oblique in the same way (direction cosines, not resampled).
    exported = sitk.ReadImage(str(logic.loader.exportInput(volume, tmp_path / "input.nrrd")))
    expected = nodes.sitk_image(volume)
    assert np.allclose(exported.GetDirection(), expected.GetDirection(), atol=1e-6)
    assert np.allclose(exported.GetOrigin(), expected.GetOrigin(), atol=1e-4)
    assert np.array_equal(sitk.GetArrayFromImage(exported), nodes.array_of(volume))
    # The CLI writes its results on the input's grid (tests/integration/test_detect.py); here the sample's results are put on
    # the oblique grid, written as the CLI writes them (NIfTI) and loaded by the module.
    folder = tmp_path / "output"
    folder.mkdir()
    arrays = {}
    for name, labelmap in (("heatmap", False), ("labelmap", True)):
        node = logic.nodes.readVolume(sample_detection.files / f"{name}.nii.gz", name, labelmap=labelmap)
        assert np.allclose(nodes.ijk_to_ras(node), nodes.ijk_to_ras(logic.nodes.readVolume(SAMPLE, "plain")))
        node.SetIJKToRASMatrix(_matrix(nodes.ijk_to_ras(volume)))
        logic.nodes.writeNode(node, folder / f"{name}.nii.gz", compress=True)
        arrays[name] = np.array(nodes.array_of(node))
    shutil.copy2(sample_detection.files / "summary.json", folder / "summary.json")
    heatmap, label = logic.loader.loadResults(saved_outcome(sample_detection, folder), volume)
    for node in (heatmap, label):
        assert np.allclose(nodes.ijk_to_ras(node), nodes.ijk_to_ras(volume), atol=1e-5), node.GetName()
        assert selftest.geometry_mismatches(nodes.volume_geometry(volume), nodes.volume_geometry(node)) == []
    assert np.array_equal(nodes.array_of(heatmap), arrays["heatmap"])
    assert np.array_equal(nodes.array_of(label), arrays["labelmap"])
    assert np.count_nonzero(np.abs(nodes.ijk_to_ras(volume)[:3, :3]) > 1e-3) > 3  # the grid is really oblique


def test_results_of_an_input_under_a_transform_follow_it(mrml, sample_detection):
    logic = mrml.logic
    volume = logic.nodes.readVolume(SAMPLE, "moved scan")
    transform = mrml.scene.AddNewNodeByClass("vtkMRMLLinearTransformNode", "registration")
    moved = _rotation(15, 1, translation=(12.0, -7.5, 30.0))
    transform.SetMatrixTransformToParent(_matrix(moved))
    volume.SetAndObserveTransformNodeID(transform.GetID())
    heatmap, label = logic.loader.loadResults(saved_outcome(sample_detection), volume)
    for node in (heatmap, label):
        assert node.GetTransformNodeID() == transform.GetID()
        assert np.allclose(nodes.ijk_to_ras(node), nodes.ijk_to_ras(volume), atol=1e-5)
    # A region's centroid is in the scan's own RAS; the slice views go to where the transform puts it.
    summary = json.loads(label.GetAttribute("LatentAnomaly.Summary"))
    row = logic.review.regionRows(label, summary)[0]
    world = logic.review.jumpToRegion(row, label)
    assert np.allclose(world, (moved @ [*row.ras, 1.0])[:3], atol=1e-4)
    assert not np.allclose(world, row.ras, atol=1.0)
    for sliceNode in logic.display.sliceNodes():
        toSlice = np.linalg.inv(nodes_matrix(sliceNode.GetSliceToRAS()))
        assert np.allclose((toSlice @ [*world, 1.0])[:3], 0.0, atol=1e-3), sliceNode.GetName()


def nodes_matrix(matrix: vtk.vtkMatrix4x4) -> np.ndarray:
    return np.array([[matrix.GetElement(i, j) for j in range(4)] for i in range(4)])
