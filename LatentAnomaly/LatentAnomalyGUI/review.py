"""Reading results already in the scene: re-threshold, the regions table, segmentation, ground-truth comparison.

:class:`ReviewTools` works on any MRML scene with numpy and the nodes' geometry (no ``sitkUtils``) and the static
calls of ``vtkSlicerSegmentationsModuleLogic`` (no ``slicer.modules``). The arithmetic lives in plain-Python files
tested without Slicer (``rethreshold.py``, ``regions.py``, ``ground_truth.py``); the methods here are exercised on a
real scene by ``tests/slicer``. ``slicer`` is imported inside the methods.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from .display import ResultDisplay
from .ground_truth import ground_truth_metrics, resample_like
from .nodes import SceneNodes, array_of, ijk_to_ras, sitk_image, to_world
from .regions import RegionRow, centroid_ras, near_miss_rows, region_rows
from .rethreshold import calibrated_subset, min_component_ml, relabel, summary_after_rethreshold, voxel_volume_ml

SUMMARY_ATTRIBUTE = "LatentAnomaly.Summary"  # on the label map node: the summary survives scene save/load
MODEL_ATTRIBUTE = "LatentAnomaly.ModelPath"
SEGMENT_NAME = "Flagged anomaly"
SEGMENT_COLOR = (1.0, 0.35, 0.1)


def summary_of(labelNode: Any) -> dict[str, Any] | None:
    """The summary stored on a label map node (``None`` if it has none)."""
    raw = labelNode.GetAttribute(SUMMARY_ATTRIBUTE) if labelNode is not None else None
    return json.loads(raw) if raw else None


class ReviewTools:
    """What the threshold slider, the regions table, the segmentation button and the ground-truth box call."""

    def __init__(self, nodes: SceneNodes, display: ResultDisplay) -> None:
        self.nodes = nodes
        self.display = display

    def rethreshold(self, heatmapNode: Any, labelNode: Any, threshold: float) -> dict[str, Any] | None:
        """Recompute the label map from the loaded heatmap at ``threshold`` (no model run); returns the new summary.

        Back at the detected threshold of a calibrated label map, only the regions detect kept are shown again."""
        import slicer

        summary = summary_of(labelNode)
        scorer = ((summary or {}).get("model") or {}).get("scorer")
        image = sitk_image(heatmapNode)
        minimum = min_component_ml(labelNode.GetAttribute(MODEL_ATTRIBUTE), scorer)
        ids, components = relabel(image, threshold, minimum, ids=True)
        labels, components = calibrated_subset(summary or {}, threshold, ids, components)
        if tuple(labels.shape) != tuple(array_of(labelNode).shape):
            raise ValueError("the heatmap and the label map do not have the same grid")
        slicer.util.updateVolumeFromArray(labelNode, labels)
        self.display.styleHeatmap(heatmapNode, threshold)
        if summary is None:
            return None
        summary = summary_after_rethreshold(summary, threshold, labels, components, voxel_volume_ml(image.GetSpacing()))
        labelNode.SetAttribute(SUMMARY_ATTRIBUTE, json.dumps(summary))
        return summary

    @staticmethod
    def regionRows(labelNode: Any, summary: dict[str, Any] | None) -> list[RegionRow]:
        """Table rows of the summary's components, then detect's near misses (regions not shown), centroids taken
        from the label map's geometry if needed."""
        matrix = ijk_to_ras(labelNode).tolist() if labelNode is not None else None
        shown = region_rows(summary, matrix)
        return shown + near_miss_rows(summary, matrix, start=len(shown) + 1)

    @staticmethod
    def focusPoint(heatmapNode: Any, labelNode: Any) -> tuple[tuple[float, float, float] | None, str]:
        """(RAS point, why) a loaded result opens on: the largest region shown, else the strongest near miss, else the
        heatmap's hottest voxel (a scan not flagged has no region shown; without this the views stay where they were,
        often outside the volume)."""
        from LatentAnomalyLib.outputs.focus import focus_region, hottest_voxel_ijk

        region, why = focus_region(summary_of(labelNode))
        matrix = ijk_to_ras(labelNode).tolist() if labelNode is not None else None
        point = centroid_ras(region, matrix) if region is not None else None
        if point is None and heatmapNode is not None:
            ijk = hottest_voxel_ijk(np.asarray(array_of(heatmapNode)))
            if ijk is not None:
                point, why = tuple(float(v) for v in (ijk_to_ras(heatmapNode) @ [*ijk, 1.0])[:3]), "hottest voxel"
        return (None, why) if point is None else (to_world(heatmapNode or labelNode, point), why)

    def jumpToRegion(self, row: RegionRow, referenceNode: Any = None) -> tuple[float, float, float] | None:
        """Centre all slice views on the region's centroid (through the node's parent transform, if any)."""
        if row.ras is None:
            return None
        return self.display.jumpTo(to_world(referenceNode, row.ras))

    def createSegmentation(self, labelNode: Any, referenceVolume: Any = None) -> Any:
        """A segmentation node from the label map (for editing, 3D display, .seg.nrrd and DICOM SEG export)."""
        import slicer

        scene = self.nodes.scene
        segmentationNode = scene.AddNewNodeByClass(
            "vtkMRMLSegmentationNode", self.nodes.uniqueName(f"{labelNode.GetName()} segmentation")
        )
        segmentationNode.CreateDefaultDisplayNodes()
        if referenceVolume is not None:
            segmentationNode.SetReferenceImageGeometryParameterFromVolumeNode(referenceVolume)
        if not slicer.vtkSlicerSegmentationsModuleLogic.ImportLabelmapToSegmentationNode(labelNode, segmentationNode):
            scene.RemoveNode(segmentationNode)
            raise RuntimeError("could not convert the label map to a segmentation")
        segmentation = segmentationNode.GetSegmentation()
        if segmentation.GetNumberOfSegments() > 0:
            segment = segmentation.GetNthSegment(0)
            segment.SetName(SEGMENT_NAME)
            segment.SetColor(*SEGMENT_COLOR)
        segmentationNode.SetAndObserveTransformNodeID(labelNode.GetTransformNodeID())
        return segmentationNode

    def segmentationArray(self, segmentationNode: Any, referenceVolume: Any) -> np.ndarray:
        """Every segment of ``segmentationNode`` rasterised on ``referenceVolume``'s grid, as a (k, j, i) label array."""
        import slicer
        import vtk

        scene = self.nodes.scene
        temporary = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "__LatentAnomalyTemporary")
        try:
            segmentIds = vtk.vtkStringArray()
            segmentationNode.GetSegmentation().GetSegmentIDs(segmentIds)
            logic = slicer.vtkSlicerSegmentationsModuleLogic
            if not logic.ExportSegmentsToLabelmapNode(segmentationNode, segmentIds, temporary, referenceVolume):
                raise RuntimeError(f"could not rasterise {segmentationNode.GetName()} on {referenceVolume.GetName()}")
            return np.array(array_of(temporary), copy=True)
        finally:
            display = temporary.GetDisplayNode()
            if display is not None:
                scene.RemoveNode(display)
            scene.RemoveNode(temporary)

    def groundTruthArray(self, groundTruthNode: Any, heatmapNode: Any) -> np.ndarray:
        """The ground truth as a (k, j, i) array on the heatmap's grid (any segment / non-zero label = lesion)."""
        import SimpleITK as sitk

        if groundTruthNode.IsA("vtkMRMLSegmentationNode"):
            return self.segmentationArray(groundTruthNode, heatmapNode)
        truth = resample_like(sitk_image(groundTruthNode), sitk_image(heatmapNode))
        return sitk.GetArrayFromImage(truth)

    def compareWithGroundTruth(self, heatmapNode: Any, labelNode: Any, groundTruthNode: Any) -> dict[str, Any]:
        """Dice of the label map, AUROC/AUPRC of the heatmap against ``groundTruthNode``, inside the brain."""
        truth = self.groundTruthArray(groundTruthNode, heatmapNode)
        return ground_truth_metrics(array_of(heatmapNode), array_of(labelNode), truth)
