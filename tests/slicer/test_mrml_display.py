"""How the module shows results on a real scene: colour table, display range, slice composite nodes, opacity."""

from __future__ import annotations

import numpy as np
import pytest

from LatentAnomalyLib.outputs.viewing import (
    DEFAULT_HEATMAP_OPACITY,
    HEATMAP_COLORMAP,
    LABEL_OUTLINE_RGB,
    heatmap_display_range,
    inferno_table,
)
from tests.slicer.conftest import SLICE_VIEWS, saved_outcome
from tests.slicer_gui import SAMPLE, display, nodes

pytestmark = pytest.mark.mrml


def _named(scene, name):
    collection = scene.GetNodesByName(name)
    return [collection.GetItemAsObject(i) for i in range(collection.GetNumberOfItems())]


def test_heatmap_colours_and_display_range(loaded):
    scene, heatmap = loaded.context.scene, loaded.heatmap
    [color] = _named(scene, HEATMAP_COLORMAP)  # a bare scene has no Inferno: the module made exactly one
    shown = heatmap.GetDisplayNode()
    assert shown.GetColorNodeID() == color.GetID()
    table = inferno_table()
    assert color.GetNumberOfColors() == len(table)
    rgba = np.array([color.GetLookupTable().GetTableValue(i) for i in range(len(table))])
    assert np.allclose(rgba, table, atol=1 / 255)  # Slicer keeps 8-bit colours
    threshold = float(loaded.outcome.summary["voxel_threshold"])
    peak = float(nodes.array_of(heatmap).max())
    lower, upper = heatmap_display_range(threshold, peak)
    assert shown.GetWindowLevelMin() == pytest.approx(lower, abs=1e-4)
    assert shown.GetWindowLevelMax() == pytest.approx(upper, abs=1e-4)
    assert (shown.GetWindow(), shown.GetLevel()) == pytest.approx((upper - lower, (upper + lower) / 2), abs=1e-4)
    assert not shown.GetAutoWindowLevel() and shown.GetApplyThreshold()
    assert shown.GetLowerThreshold() == pytest.approx(lower, abs=1e-4) and shown.GetUpperThreshold() > peak
    labels = loaded.label.GetDisplayNode().GetColorNode()
    assert labels.GetName() == display.LABEL_COLORS_NAME
    assert labels.GetLookupTable().GetTableValue(0)[3] == 0.0
    assert labels.GetLookupTable().GetTableValue(1) == pytest.approx((*LABEL_OUTLINE_RGB, 1.0))
    # Showing a second result reuses both tables.
    again = loaded.context.logic.nodes.readVolume(SAMPLE, "second scan")
    loaded.context.logic.loader.loadResults(saved_outcome_for(loaded), again)
    assert len(_named(scene, HEATMAP_COLORMAP)) == 1 and len(_named(scene, display.LABEL_COLORS_NAME)) == 1


def saved_outcome_for(loaded):
    outcome = type(loaded.outcome)(loaded.outcome.status, 0, loaded.outcome.outputDir, loaded.outcome.modelPath)
    outcome.summary = loaded.outcome.summary
    return outcome


def test_an_inferno_table_already_in_the_scene_is_used(mrml, sample_detection):
    existing = mrml.logic.display._addTable(HEATMAP_COLORMAP, [(0, 0, 0, 1), (1, 1, 1, 1)])  # as Slicer ships one
    volume = mrml.logic.nodes.readVolume(SAMPLE, "scan")
    heatmap, _ = mrml.logic.loader.loadResults(saved_outcome(sample_detection), volume)
    assert heatmap.GetDisplayNode().GetColorNodeID() == existing.GetID()
    assert len(_named(mrml.scene, HEATMAP_COLORMAP)) == 1


def test_layers_and_opacity_on_the_slice_composite_nodes(loaded):
    logic = loaded.context.logic
    composites = logic.display.compositeNodes()
    assert sorted(c.GetLayoutName() for c in composites) == sorted(SLICE_VIEWS)
    for composite in composites:
        assert composite.GetBackgroundVolumeID() == loaded.inputVolume.GetID()
        assert composite.GetForegroundVolumeID() == loaded.heatmap.GetID()
        assert composite.GetLabelVolumeID() == loaded.label.GetID()
        assert composite.GetForegroundOpacity() == pytest.approx(DEFAULT_HEATMAP_OPACITY)
    assert all(sliceNode.GetUseLabelOutline() for sliceNode in logic.display.sliceNodes())
    shown = logic.loader.lastShown
    assert shown.views == len(SLICE_VIEWS) and not shown.fitted and "not fitted" in shown.note
    assert logic.display.setHeatmapOpacity(loaded.heatmap, 0.8) == len(SLICE_VIEWS)
    assert [c.GetForegroundOpacity() for c in composites] == pytest.approx([0.8] * len(SLICE_VIEWS))
    assert logic.display.setHeatmapOpacity(loaded.heatmap, 1.7) == len(SLICE_VIEWS)  # clamped to [0, 1]
    assert [c.GetForegroundOpacity() for c in composites] == pytest.approx([1.0] * len(SLICE_VIEWS))
    composites[0].SetForegroundVolumeID(None)  # a view showing something else is left alone
    assert logic.display.setHeatmapOpacity(loaded.heatmap, 0.3) == len(SLICE_VIEWS) - 1
    assert logic.display.setHeatmapOpacity(None, 0.4) == 0 and logic.display.heatmapOpacity == 0.4
