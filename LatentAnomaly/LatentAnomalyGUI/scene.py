"""Slicer-only half of the logic: put results into the scene, colour them, re-threshold, convert, export.

Kept apart from ``logic.py`` so the file layer stays short and testable; every method imports
``slicer`` (or ``vtk``, ``sitkUtils``) inside, so importing this file needs no Slicer. None of it is
unit-tested outside Slicer; the module's self-test (``LatentAnomalyTest``) exercises the loading path.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .display import heatmap_display_range
from .rethreshold import min_component_ml, relabel, summary_after_rethreshold, voxel_volume_ml

if TYPE_CHECKING:
    from .logic import DetectionOutcome

SUMMARY_ATTRIBUTE = "LatentAnomaly.Summary"  # on the label map node: the summary survives scene save/load
MODEL_ATTRIBUTE = "LatentAnomaly.ModelPath"


class SceneMixin:
    """Methods of ``LatentAnomalyLogic`` that work on MRML nodes."""

    @staticmethod
    def exportVolume(volumeNode, path: str | Path, compress: bool = False) -> Path:
        """Write a volume node to a file without re-pointing the node at that file (``exportNode``, Slicer >= 5.2)."""
        import slicer

        path = Path(path)
        properties = {"useCompression": 1 if compress else 0}
        if hasattr(slicer.util, "exportNode"):
            slicer.util.exportNode(volumeNode, str(path), properties)
        else:  # older Slicer: saveNode also changes the node's storage file name
            slicer.util.saveNode(volumeNode, str(path), properties)
        if not path.is_file():
            raise RuntimeError(f"could not write {volumeNode.GetName()} to {path}")
        return path

    def loadResults(self, outcome: DetectionOutcome, inputVolume) -> tuple[Any, Any]:
        import slicer

        name = inputVolume.GetName()
        scene = slicer.mrmlScene
        added = []
        try:
            heatmap = slicer.util.loadVolume(
                str(outcome.heatmapPath), {"name": scene.GenerateUniqueName(f"{name} anomaly heatmap"), "show": False}
            )
            added.append(heatmap)
            label = slicer.util.loadLabelVolume(
                str(outcome.labelmapPath), {"name": scene.GenerateUniqueName(f"{name} anomaly labels"), "show": False}
            )
            added.append(label)
            for node in (heatmap, label):
                # The files live in a temporary folder: detach them so "Save" writes the data, not a dangling path.
                storage = node.GetStorageNode()
                if storage is not None:
                    node.SetAndObserveStorageNodeID(None)
                    scene.RemoveNode(storage)
                node.SetAndObserveTransformNodeID(inputVolume.GetTransformNodeID())
            label.SetAttribute(SUMMARY_ATTRIBUTE, json.dumps(outcome.summary))
            if outcome.modelPath is not None:
                label.SetAttribute(MODEL_ATTRIBUTE, str(outcome.modelPath))
        except Exception:
            for node in added:  # a half-loaded result would be left behind: leave the scene as it was
                scene.RemoveNode(node)
            raise
        self.showResults(inputVolume, heatmap, label, float(outcome.summary["voxel_threshold"]))
        return heatmap, label

    @staticmethod
    def styleHeatmap(heatmapNode, threshold: float) -> None:
        """Inferno colours from just below the threshold to the peak; lower scores transparent."""
        import slicer

        peak = float(heatmapNode.GetImageData().GetScalarRange()[1])
        lower, upper = heatmap_display_range(threshold, peak)
        display = heatmapNode.GetDisplayNode()
        if display is None:
            heatmapNode.CreateDefaultDisplayNodes()
            display = heatmapNode.GetDisplayNode()
        for colorName in ("Inferno", "ColdToHotRainbow"):
            color = slicer.mrmlScene.GetFirstNodeByName(colorName)
            if color is not None and color.IsA("vtkMRMLColorNode"):
                display.SetAndObserveColorNodeID(color.GetID())
                break
        display.SetAutoWindowLevel(False)
        display.SetWindowLevelMinMax(lower, upper)
        display.SetAutoThreshold(False)
        display.SetThreshold(lower, max(upper, peak) + 1.0)
        display.SetApplyThreshold(True)

    def showResults(self, inputVolume, heatmapNode, labelNode, threshold: float) -> None:
        """Scan as background, heatmap as foreground in every slice view, label map as outline layer."""
        import slicer

        self.styleHeatmap(heatmapNode, threshold)
        opacity = float(getattr(self, "heatmapOpacity", 0.5))  # the panel's opacity slider (review.py)
        slicer.util.setSliceViewerLayers(
            background=inputVolume, foreground=heatmapNode, foregroundOpacity=opacity, label=labelNode, fit=True
        )

    def rethreshold(self, heatmapNode, labelNode, threshold: float) -> dict[str, Any] | None:
        """Recompute the label map from the loaded heatmap at ``threshold`` (no model run); returns the new summary."""
        import sitkUtils
        import slicer

        raw = labelNode.GetAttribute(SUMMARY_ATTRIBUTE)
        summary = json.loads(raw) if raw else None
        scorer = ((summary or {}).get("model") or {}).get("scorer")
        image = sitkUtils.PullVolumeFromSlicer(heatmapNode)
        minimum = min_component_ml(labelNode.GetAttribute(MODEL_ATTRIBUTE), scorer)
        labels, components = relabel(image, threshold, minimum)
        if tuple(labels.shape) != tuple(slicer.util.arrayFromVolume(labelNode).shape):
            raise ValueError("the heatmap and the label map do not have the same grid")
        slicer.util.updateVolumeFromArray(labelNode, labels)
        self.styleHeatmap(heatmapNode, threshold)
        if summary is None:
            return None
        summary = summary_after_rethreshold(summary, threshold, labels, components, voxel_volume_ml(image.GetSpacing()))
        labelNode.SetAttribute(SUMMARY_ATTRIBUTE, json.dumps(summary))
        return summary

    @staticmethod
    def createSegmentation(labelNode, referenceVolume=None):
        """A segmentation node from the label map (for editing, 3D display and DICOM SEG export)."""
        import slicer

        scene = slicer.mrmlScene
        segmentationNode = scene.AddNewNodeByClass(
            "vtkMRMLSegmentationNode", scene.GenerateUniqueName(f"{labelNode.GetName()} segmentation")
        )
        if referenceVolume is not None:
            segmentationNode.SetReferenceImageGeometryParameterFromVolumeNode(referenceVolume)
        if not slicer.modules.segmentations.logic().ImportLabelmapToSegmentationNode(labelNode, segmentationNode):
            scene.RemoveNode(segmentationNode)
            raise RuntimeError("could not convert the label map to a segmentation")
        segmentation = segmentationNode.GetSegmentation()
        if segmentation.GetNumberOfSegments() > 0:
            segment = segmentation.GetNthSegment(0)
            segment.SetName("Flagged anomaly")
            segment.SetColor(1.0, 0.35, 0.1)
        segmentationNode.SetAndObserveTransformNodeID(labelNode.GetTransformNodeID())
        return segmentationNode

    def exportResults(self, folder: str | Path, heatmapNode, labelNode) -> list[Path]:
        """Write label map, heatmap and the (possibly re-thresholded) summary into ``folder``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        written = [
            self.exportVolume(node, folder / name, compress=True)
            for node, name in ((labelNode, "labelmap.nii.gz"), (heatmapNode, "heatmap.nii.gz"))
            if node is not None
        ]
        raw = labelNode.GetAttribute(SUMMARY_ATTRIBUTE) if labelNode is not None else None
        if raw:
            (folder / "summary.json").write_text(json.dumps(json.loads(raw), indent=2) + "\n", encoding="utf-8")
            written.append(folder / "summary.json")
        return written

    @staticmethod
    def volumeGeometry(volumeNode) -> dict[str, list]:
        """Dimensions, spacing, origin and IJK-to-RAS matrix, for comparing result and input grids."""
        import vtk

        matrix = vtk.vtkMatrix4x4()
        volumeNode.GetIJKToRASMatrix(matrix)
        return {
            "dimensions": list(volumeNode.GetImageData().GetDimensions()),
            "spacing": list(volumeNode.GetSpacing()),
            "origin": list(volumeNode.GetOrigin()),
            "ijkToRas": [[matrix.GetElement(i, j) for j in range(4)] for i in range(4)],
        }
