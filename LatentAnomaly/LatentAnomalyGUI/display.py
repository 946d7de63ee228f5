"""How results are shown in the slice views: Inferno heatmap over the scan, label map as a green outline.

The colour window, opacity and colours are the shared viewing conventions of ``LatentAnomalyLib.outputs.viewing`` (the
browser review and report.html use the same), so the three viewers show the same picture. :class:`ResultDisplay`
works on any MRML scene: it sets the slice composite nodes directly (no layout manager), creates the Inferno
colour table when the scene has none (a bare ``slicer-core`` scene has none; desktop Slicer ships one), and says
what it did, e.g. that there were no slice views to fit. ``slicer`` is imported inside the methods.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

from LatentAnomalyLib.outputs.viewing import (
    DEFAULT_HEATMAP_OPACITY,
    HEATMAP_COLORMAP,
    LABEL_OUTLINE_RGB,
    heatmap_display_range,
    inferno_table,
)

LABEL_COLORS_NAME = "LatentAnomaly label outline"
FALLBACK_COLORMAP = "PET-Heat"  # a bare scene has it; used only if matplotlib (Inferno's colours) is missing


@dataclass
class Shown:
    """What :meth:`ResultDisplay.show` did: composite nodes set, whether the views were fitted, and why not."""

    views: int
    fitted: bool
    note: str = ""


class ResultDisplay:
    """Colours, layers, opacity and slice position for the results in ``scene``."""

    def __init__(self, scene: Any, applicationLogic: Any = None) -> None:
        self.scene = scene
        self.applicationLogic = applicationLogic
        self.heatmapOpacity = DEFAULT_HEATMAP_OPACITY

    def _named(self, name: str, className: str = "vtkMRMLColorNode") -> Any:
        collection = self.scene.GetNodesByName(name)
        for i in range(collection.GetNumberOfItems()):
            node = collection.GetItemAsObject(i)
            if node.IsA(className):
                return node
        return None

    def heatmapColorNode(self) -> Any:
        """The scene's Inferno colour node; created from ``viewing.inferno_table`` when the scene has none."""
        node = self._named(HEATMAP_COLORMAP)
        if node is not None:
            return node
        try:
            table = inferno_table()
        except ImportError:  # no matplotlib in this Python: a colour table the scene always has
            return self._named(FALLBACK_COLORMAP)
        return self._addTable(HEATMAP_COLORMAP, [tuple(rgba) for rgba in table])

    def labelColorNode(self) -> Any:
        """Two colours: 0 transparent, 1 the shared outline green (``viewing.LABEL_OUTLINE_RGB``)."""
        node = self._named(LABEL_COLORS_NAME)
        if node is None:
            node = self._addTable(LABEL_COLORS_NAME, [(0.0, 0.0, 0.0, 0.0), (*LABEL_OUTLINE_RGB, 1.0)])
        return node

    def _addTable(self, name: str, colors: list[tuple[float, ...]]) -> Any:
        import slicer

        node = slicer.vtkMRMLColorTableNode()
        node.SetName(name)
        node.SetTypeToUser()
        node.SetNumberOfColors(len(colors))
        node.GetLookupTable().SetRange(0, len(colors) - 1)
        for index, (r, g, b, a) in enumerate(colors):
            node.SetColor(index, f"{name} {index}", float(r), float(g), float(b), float(a))
        node.SetAttribute("Category", "LatentAnomaly")
        self.scene.AddNode(node)
        return node

    def styleHeatmap(self, heatmapNode: Any, threshold: float) -> Any:
        """Inferno from just below the threshold to the peak, lower scores transparent; returns the colour node."""
        peak = float(heatmapNode.GetImageData().GetScalarRange()[1])
        lower, upper = heatmap_display_range(threshold, peak)
        display = heatmapNode.GetDisplayNode()
        if display is None:
            heatmapNode.CreateDefaultDisplayNodes()
            display = heatmapNode.GetDisplayNode()
        color = self.heatmapColorNode()
        if color is not None:
            display.SetAndObserveColorNodeID(color.GetID())
        display.SetAutoWindowLevel(False)
        display.SetWindowLevelMinMax(lower, upper)
        display.SetAutoThreshold(False)
        display.SetThreshold(lower, max(upper, peak) + 1.0)
        display.SetApplyThreshold(True)
        return color

    def styleLabel(self, labelNode: Any) -> None:
        display = labelNode.GetDisplayNode()
        if display is None:
            labelNode.CreateDefaultDisplayNodes()
            display = labelNode.GetDisplayNode()
        display.SetAndObserveColorNodeID(self.labelColorNode().GetID())

    def compositeNodes(self) -> list[Any]:
        collection = self.scene.GetNodesByClass("vtkMRMLSliceCompositeNode")
        return [collection.GetItemAsObject(i) for i in range(collection.GetNumberOfItems())]

    def sliceNodes(self) -> list[Any]:
        collection = self.scene.GetNodesByClass("vtkMRMLSliceNode")
        return [collection.GetItemAsObject(i) for i in range(collection.GetNumberOfItems())]

    def show(self, inputVolume: Any, heatmapNode: Any, labelNode: Any, threshold: float) -> Shown:
        """Scan as background, heatmap as foreground at the module's opacity, label map outlined, in every view."""
        self.styleHeatmap(heatmapNode, threshold)
        self.styleLabel(labelNode)
        composites = self.compositeNodes()
        for composite in composites:
            composite.SetBackgroundVolumeID(inputVolume.GetID() if inputVolume is not None else None)
            composite.SetForegroundVolumeID(heatmapNode.GetID())
            composite.SetForegroundOpacity(self.heatmapOpacity)
            composite.SetLabelVolumeID(labelNode.GetID())
            composite.SetLabelOpacity(1.0)
        for sliceNode in self.sliceNodes():
            sliceNode.SetUseLabelOutline(True)
        fitted, note = self.fitSlices()
        return Shown(len(composites), fitted, note)

    def fitSlices(self) -> tuple[bool, str]:
        """Fit the slice views to the background (desktop app only); else say why nothing was fitted."""
        slicer = sys.modules.get("slicer")
        app = getattr(slicer, "app", None)
        layoutManager = app.layoutManager() if app is not None else None
        if layoutManager is None:
            return False, "no application window: slice views not fitted (use the slice logics to fit)"
        layoutManager.resetSliceViews()
        return True, ""

    def setHeatmapOpacity(self, heatmapNode: Any, opacity: float) -> int:
        """Set the foreground opacity of every slice view showing ``heatmapNode`` on top; returns how many."""
        self.heatmapOpacity = min(max(float(opacity), 0.0), 1.0)
        if heatmapNode is None:
            return 0
        changed = 0
        for composite in self.compositeNodes():
            if composite.GetForegroundVolumeID() == heatmapNode.GetID():
                composite.SetForegroundOpacity(self.heatmapOpacity)
                changed += 1
        return changed

    def jumpTo(self, point: Any) -> tuple[float, float, float]:
        """Centre every slice view of the scene on the RAS ``point`` (world coordinates)."""
        import slicer

        r, a, s = (float(v) for v in point)
        slicer.vtkMRMLSliceNode.JumpAllSlices(self.scene, r, a, s, slicer.vtkMRMLSliceNode.CenteredJumpSlice)
        return r, a, s
