"""Slicer-only review tools: heatmap opacity, jumping to a flagged region, comparing with a ground truth.

Kept apart from ``scene.py`` (which loads, re-thresholds and exports results) because these act on
what is already shown. Every method imports ``slicer`` / ``vtk`` / ``sitkUtils`` inside, so importing
this file needs no Slicer; the arithmetic lives in ``regions.py`` and ``ground_truth.py``, which pytest
covers. The methods themselves run only in Slicer (the self-test calls the region and metrics ones).
"""

from __future__ import annotations

from typing import Any

from .ground_truth import ground_truth_metrics, resample_like
from .regions import RegionRow, region_rows

DEFAULT_OPACITY = 0.5


class ReviewMixin:
    """Methods of ``LatentAnomalyLogic`` that help a user read the results already in the scene."""

    heatmapOpacity: float = DEFAULT_OPACITY  # used when new results are shown

    def setHeatmapOpacity(self, heatmapNode, opacity: float) -> int:
        """Set the foreground opacity of every slice view showing ``heatmapNode`` on top; returns how many."""
        import slicer

        self.heatmapOpacity = min(max(float(opacity), 0.0), 1.0)
        if heatmapNode is None:
            return 0
        changed = 0
        for composite in slicer.util.getNodesByClass("vtkMRMLSliceCompositeNode"):
            if composite.GetForegroundVolumeID() == heatmapNode.GetID():
                composite.SetForegroundOpacity(self.heatmapOpacity)
                changed += 1
        return changed

    @staticmethod
    def regionRows(labelNode, summary: dict[str, Any] | None) -> list[RegionRow]:
        """Table rows of the summary's components, centroids taken from the label map's geometry if needed."""
        import vtk

        matrix = None
        if labelNode is not None:
            vtkMatrix = vtk.vtkMatrix4x4()
            labelNode.GetIJKToRASMatrix(vtkMatrix)
            matrix = [[vtkMatrix.GetElement(i, j) for j in range(4)] for i in range(4)]
        return region_rows(summary, matrix)

    @staticmethod
    def jumpToRegion(row: RegionRow, referenceNode=None) -> tuple[float, float, float] | None:
        """Centre all slice views on the region's centroid (through the node's transform, if any)."""
        import slicer
        import vtk

        if row.ras is None:
            return None
        point = list(row.ras)
        transformNode = referenceNode.GetParentTransformNode() if referenceNode is not None else None
        if transformNode is not None:
            toWorld = vtk.vtkGeneralTransform()
            transformNode.GetTransformToWorld(toWorld)
            point = list(toWorld.TransformPoint(point))
        slicer.modules.markups.logic().JumpSlicesToLocation(point[0], point[1], point[2], True)
        return point[0], point[1], point[2]

    @staticmethod
    def groundTruthArray(groundTruthNode, heatmapNode):
        """The ground truth as a (k, j, i) array on the heatmap's grid (any segment / non-zero label = lesion)."""
        import numpy as np
        import SimpleITK as sitk
        import sitkUtils
        import slicer
        import vtk

        if groundTruthNode.IsA("vtkMRMLSegmentationNode"):
            scene = slicer.mrmlScene
            temporary = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "__LatentAnomalyGroundTruth")
            try:
                segmentIds = vtk.vtkStringArray()
                groundTruthNode.GetSegmentation().GetSegmentIDs(segmentIds)
                logic = slicer.modules.segmentations.logic()
                if not logic.ExportSegmentsToLabelmapNode(groundTruthNode, segmentIds, temporary, heatmapNode):
                    raise RuntimeError(f"could not rasterise {groundTruthNode.GetName()} on the heatmap grid")
                return np.array(slicer.util.arrayFromVolume(temporary), copy=True)
            finally:
                scene.RemoveNode(temporary)
        truth = sitkUtils.PullVolumeFromSlicer(groundTruthNode)
        reference = sitkUtils.PullVolumeFromSlicer(heatmapNode)
        return sitk.GetArrayFromImage(resample_like(truth, reference))

    def compareWithGroundTruth(self, heatmapNode, labelNode, groundTruthNode) -> dict[str, Any]:
        """Dice of the label map, AUROC/AUPRC of the heatmap against ``groundTruthNode``, inside the brain."""
        import slicer

        truth = self.groundTruthArray(groundTruthNode, heatmapNode)
        return ground_truth_metrics(
            slicer.util.arrayFromVolume(heatmapNode), slicer.util.arrayFromVolume(labelNode), truth
        )
