"""Detect from the module on a real MRML scene: the module's runner starts the real CLI out of process."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
import SimpleITK as sitk

from tests.slicer.conftest import build_scene, node_ids
from tests.slicer_gui import SAMPLE, DetectParameters, RunStatus, nodes, review, selftest

pytestmark = pytest.mark.mrml


def test_load_input_volume(mrml):
    volume = mrml.logic.nodes.readVolume(SAMPLE, "IXI sample")
    assert volume.IsA("vtkMRMLScalarVolumeNode") and not volume.IsA("vtkMRMLLabelMapVolumeNode")
    assert volume.GetName() == "IXI sample" and mrml.scene.GetNodeByID(volume.GetID()) is volume
    reference = sitk.ReadImage(str(SAMPLE))
    assert volume.GetImageData().GetDimensions() == reference.GetSize()
    # Same voxels at the same physical places as SimpleITK reads them (Slicer may store the axes flipped).
    resampled = sitk.Resample(nodes.sitk_image(volume), reference, sitk.Transform(), sitk.sitkNearestNeighbor)
    assert np.array_equal(sitk.GetArrayFromImage(resampled), sitk.GetArrayFromImage(reference))
    again = mrml.logic.nodes.readVolume(SAMPLE, "IXI sample")
    assert again.GetName() != volume.GetName()  # a second copy gets a unique name
    with pytest.raises(RuntimeError, match="could not read"):
        mrml.logic.nodes.readVolume(SAMPLE.parent / "missing.nii.gz", "missing")


def test_detect_through_the_module_runner_and_the_real_cli(sample_detection):
    sample = sample_detection
    outcome, scene = sample.outcome, sample.context.scene
    assert outcome.status is RunStatus.SUCCEEDED and outcome.exitCode == 0
    assert sample.progress and sample.progress[-1] == 1.0 and sample.progress == sorted(sample.progress)
    assert outcome.inputPath.suffix == ".nrrd" and outcome.inputPath.is_file()
    heat, label = outcome.heatmapNode, outcome.labelNode
    assert node_ids(scene) - sample.nodesBefore >= {heat.GetID(), label.GetID()}
    assert label.IsA("vtkMRMLLabelMapVolumeNode") and not heat.IsA("vtkMRMLLabelMapVolumeNode")
    assert heat.GetStorageNode() is None and label.GetStorageNode() is None  # no dangling temporary file
    expected = nodes.volume_geometry(sample.inputVolume)
    for node in (heat, label):
        assert selftest.geometry_mismatches(expected, nodes.volume_geometry(node)) == [], node.GetName()
    assert set(np.unique(nodes.array_of(label)).tolist()) <= {0, 1}
    summary = json.loads(label.GetAttribute(review.SUMMARY_ATTRIBUTE))
    assert summary == outcome.summary and summary["model"]["name"] and "subject_score" in summary
    # The nodes hold what the CLI wrote, voxel for voxel in physical space.
    for node, path in ((heat, outcome.heatmapPath), (label, outcome.labelmapPath)):
        written = sitk.ReadImage(str(path))
        resampled = sitk.Resample(nodes.sitk_image(node), written, sitk.Transform(), sitk.sitkNearestNeighbor)
        assert np.array_equal(sitk.GetArrayFromImage(resampled), sitk.GetArrayFromImage(written)), path.name
    assert int(np.count_nonzero(nodes.array_of(label))) > 0  # the sample gives at least one flagged region


def test_cancel_during_a_run_leaves_exactly_the_nodes_it_had(sample_detection):
    context = build_scene()
    volume = context.logic.nodes.readVolume(SAMPLE, "IXI sample")
    before = node_ids(context.scene)
    started = threading.Event()
    outcomes = []
    context.logic.startDetection(
        volume,
        DetectParameters(device="cpu"),
        onProgress=lambda fraction, stage: started.set(),
        onFinished=outcomes.append,
    )
    assert started.wait(300), "no progress line within 5 minutes"
    context.logic.cancel()
    assert context.logic.waitForFinished(60)
    [outcome] = outcomes
    assert outcome.status is RunStatus.CANCELLED and outcome.errorMessage == "cancelled"
    assert outcome.heatmapNode is None and outcome.labelNode is None
    assert node_ids(context.scene) == before
    assert not context.logic.isRunning()
    context.logic.cleanup()
