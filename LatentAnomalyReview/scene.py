"""The MRML side of the review page: three volume nodes styled with the shared viewing conventions.

The scan, heatmap and label-map nodes are created once, filled with the first case before any view exists (a
trame-slicer view created before its volumes renders near-black frames), and later cases replace their voxels and
geometry in place. Colours come from :mod:`LatentAnomalyLib.outputs.viewing`: an Inferno table (slicer-core has none), the
heatmap's display range with lower scores transparent, the brain-percentile scan window, a green label outline.
"""

from __future__ import annotations

import numpy as np
import slicer
from slicer.util import updateVolumeFromArray
from vtkmodules.vtkCommonMath import vtkMatrix4x4

from LatentAnomalyLib.outputs.viewing import DEFAULT_HEATMAP_OPACITY, LABEL_OUTLINE_RGB, inferno_table

from .case_data import CaseData, ras_matrix


def _color_table(scene: slicer.vtkMRMLScene, name: str, rgba: np.ndarray) -> slicer.vtkMRMLColorTableNode:
    table = slicer.vtkMRMLColorTableNode()
    table.SetName(name)
    table.SetTypeToUser()
    table.SetNumberOfColors(len(rgba))
    for i, (r, g, b, a) in enumerate(rgba):
        table.SetColor(i, f"{name} {i}", float(r), float(g), float(b), float(a))
    table.SetHideFromEditors(False)
    scene.AddNode(table)
    return table


class ReviewScene:
    """Scan (background), heatmap (foreground) and label map (outline) nodes of one scene."""

    def __init__(self, scene: slicer.vtkMRMLScene) -> None:
        self.scene = scene
        self.opacity = DEFAULT_HEATMAP_OPACITY
        self.inferno = _color_table(scene, "Inferno", inferno_table())
        outline = np.array([[0.0, 0.0, 0.0, 0.0], [*LABEL_OUTLINE_RGB, 1.0]])
        self.label_colors = _color_table(scene, "LatentAnomaly label outline", outline)
        self.scan = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "scan")
        self.heatmap = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "anomaly heatmap")
        self.labels = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "anomaly labels")
        # Display nodes made here, with fixed windows: CreateDefaultDisplayNodes would compute a histogram (0.25 s).
        grey = scene.GetFirstNodeByName("Grey")
        for node, class_name, colors in (
            (self.scan, "vtkMRMLScalarVolumeDisplayNode", grey),
            (self.heatmap, "vtkMRMLScalarVolumeDisplayNode", self.inferno),
            (self.labels, "vtkMRMLLabelMapVolumeDisplayNode", self.label_colors),
        ):
            display = scene.AddNewNodeByClass(class_name)
            if class_name != "vtkMRMLLabelMapVolumeDisplayNode":
                display.SetAutoWindowLevel(False)
            if colors is not None:
                display.SetAndObserveColorNodeID(colors.GetID())
            node.SetAndObserveDisplayNodeID(display.GetID())

    def set_case(self, data: CaseData) -> None:
        """Put a case's voxels and geometry into the nodes and style them."""
        matrix = vtkMatrix4x4()
        for i, row in enumerate(ras_matrix(data.reference)):
            for j, value in enumerate(row):
                matrix.SetElement(i, j, float(value))
        self.scan.GetDisplayNode().SetWindowLevelMinMax(*data.scan_window())
        self.style_heatmap(data)
        for node, array in ((self.scan, data.scan), (self.heatmap, data.heatmap), (self.labels, data.labels)):
            updateVolumeFromArray(node, array)
            node.SetIJKToRASMatrix(matrix)

    def style_heatmap(self, data: CaseData) -> None:
        """Inferno over the display range of the current threshold; scores below its lower end transparent."""
        lower, upper = data.display_range()
        display = self.heatmap.GetDisplayNode()
        display.SetAndObserveColorNodeID(self.inferno.GetID())
        display.SetAutoWindowLevel(False)
        display.SetWindowLevelMinMax(lower, upper)
        display.SetAutoThreshold(False)
        display.SetThreshold(lower, max(upper, data.peak) + 1.0)
        display.SetApplyThreshold(True)

    def update_labels(self, data: CaseData) -> None:
        """Show the case's current label map (after a threshold change)."""
        updateVolumeFromArray(self.labels, data.labels)
        self.style_heatmap(data)

    def show_in_slice_views(self) -> None:
        """Layers of every slice view: scan, heatmap at the current opacity, label map as an outline."""
        for composite in self._nodes("vtkMRMLSliceCompositeNode"):
            composite.SetBackgroundVolumeID(self.scan.GetID())
            composite.SetForegroundVolumeID(self.heatmap.GetID())
            composite.SetForegroundOpacity(self.opacity)
            composite.SetLabelVolumeID(self.labels.GetID())
            composite.SetLabelOpacity(1.0)
        for slice_node in self._nodes("vtkMRMLSliceNode"):
            slice_node.SetUseLabelOutline(True)

    def set_opacity(self, opacity: float) -> None:
        self.opacity = min(max(float(opacity), 0.0), 1.0)
        for composite in self._nodes("vtkMRMLSliceCompositeNode"):
            composite.SetForegroundOpacity(self.opacity)

    @staticmethod
    def frame(slice_node: slicer.vtkMRMLSliceNode, corners: np.ndarray | None, margin: float = 1.08) -> None:
        """Zoom and centre a slice view on the brain's bounding box (Slicer's fit uses the whole volume, often
        mostly background); the slice offset moves to the brain's centre, the caller restores it."""
        width, height, _ = slice_node.GetDimensions()
        if corners is None or width < 2 or height < 2:
            return
        matrix = slice_node.GetSliceToRAS()
        extents = [np.ptp(corners @ np.array([matrix.GetElement(r, c) for r in range(3)])) for c in (0, 1)]
        scale = max(extents[0] / width, extents[1] / height) * margin
        slice_node.SetFieldOfView(width * scale, height * scale, slice_node.GetFieldOfView()[2])
        slice_node.JumpSliceByCentering(*(float(v) for v in corners.mean(axis=0)))

    def jump_to(self, ras: list[float]) -> None:
        """Move every slice view through the RAS point (offsets only; zoom and pan stay)."""
        slicer.vtkMRMLSliceNode.JumpAllSlices(
            self.scene, float(ras[0]), float(ras[1]), float(ras[2]), slicer.vtkMRMLSliceNode.OffsetJumpSlice
        )

    def _nodes(self, class_name: str) -> list:
        collection = self.scene.GetNodesByClass(class_name)
        return [collection.GetItemAsObject(i) for i in range(collection.GetNumberOfItems())]
