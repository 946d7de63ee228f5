"""The scene saved as a Slicer data bundle (.mrb) and read back keeps the results as the user left them."""

from __future__ import annotations

import json

import numpy as np
import pytest
import slicer

from LatentAnomalyLib.outputs.viewing import HEATMAP_COLORMAP
from tests.slicer.conftest import build_scene
from tests.slicer_gui import nodes, review

pytestmark = pytest.mark.mrml


def _read_bundle(path, cache):
    """A new scene reading ``path`` as desktop Slicer does: remote-IO and data-IO manager logics on the scene."""
    context = build_scene()
    remote = slicer.vtkMRMLRemoteIOLogic()
    remote.SetMRMLScene(context.scene)
    remote.SetMRMLApplicationLogic(context.app)
    remote.GetCacheManager().SetRemoteCacheDirectory(str(cache))
    io = slicer.vtkDataIOManagerLogic()
    io.SetMRMLScene(context.scene)
    io.SetMRMLApplicationLogic(context.app)
    io.SetAndObserveDataIOManager(remote.GetDataIOManager())
    remote.AddDataIOToScene()
    context.keep += [remote, io]
    assert context.scene.ReadFromMRB(str(path)), f"could not read {path}"
    return context


def _only(scene, name):
    collection = scene.GetNodesByName(name)
    assert collection.GetNumberOfItems() == 1, name
    return collection.GetItemAsObject(0)


def test_scene_saved_as_mrb_and_reloaded_keeps_the_results(loaded, tmp_path):
    logic, heat, label = loaded.context.logic, loaded.heatmap, loaded.label
    threshold = float(loaded.outcome.summary["voxel_threshold"]) * 1.2
    summary = logic.review.rethreshold(heat, label, threshold)
    logic.display.setHeatmapOpacity(heat, 0.7)
    labels = np.array(nodes.array_of(label))
    scores = np.array(nodes.array_of(heat))
    window = (heat.GetDisplayNode().GetWindowLevelMin(), heat.GetDisplayNode().GetWindowLevelMax())
    lowerThreshold = heat.GetDisplayNode().GetLowerThreshold()
    colors = heat.GetDisplayNode().GetColorNode()
    table = np.array([colors.GetLookupTable().GetTableValue(i) for i in range(colors.GetNumberOfColors())])
    bundle = tmp_path / "review.mrb"
    loaded.context.scene.SetRootDirectory(str(tmp_path))
    assert loaded.context.scene.WriteToMRB(str(bundle)) and bundle.is_file()

    context = _read_bundle(bundle, tmp_path / "cache")
    scene = context.scene
    heat2, label2 = _only(scene, heat.GetName()), _only(scene, label.GetName())
    assert label2.IsA("vtkMRMLLabelMapVolumeNode")
    assert np.array_equal(nodes.array_of(heat2), scores) and np.array_equal(nodes.array_of(label2), labels)
    assert np.allclose(nodes.ijk_to_ras(heat2), nodes.ijk_to_ras(heat)) and np.allclose(
        nodes.ijk_to_ras(label2), nodes.ijk_to_ras(label)
    )
    stored = json.loads(label2.GetAttribute(review.SUMMARY_ATTRIBUTE))
    assert stored == summary and stored["voxel_threshold"] == pytest.approx(threshold)
    shown = heat2.GetDisplayNode()
    assert shown.GetColorNode().GetName() == HEATMAP_COLORMAP
    table2 = np.array([shown.GetColorNode().GetLookupTable().GetTableValue(i) for i in range(len(table))])
    assert shown.GetColorNode().GetNumberOfColors() == len(table) and np.allclose(table2, table, atol=1 / 255)
    assert (shown.GetWindowLevelMin(), shown.GetWindowLevelMax()) == pytest.approx(window, abs=1e-4)
    assert shown.GetLowerThreshold() == pytest.approx(lowerThreshold, abs=1e-4) and shown.GetApplyThreshold()
    composites = [
        c for c in context.logic.display.compositeNodes() if c.GetForegroundVolumeID() == heat2.GetID()
    ]
    assert len(composites) == 3
    assert all(c.GetForegroundOpacity() == pytest.approx(0.7) for c in composites)
    assert all(c.GetLabelVolumeID() == label2.GetID() for c in composites)
    # The reloaded results work with the module as before: back to the detected threshold.
    back = context.logic.review.rethreshold(heat2, label2, float(loaded.outcome.summary["voxel_threshold"]))
    assert back["n_components"] == loaded.outcome.summary["n_components"]
