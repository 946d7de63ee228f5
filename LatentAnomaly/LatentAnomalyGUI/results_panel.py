"""The results part of the module panel: summary text, flagged-regions table, ground-truth metrics, export.

Kept apart from ``widget.py`` (which wires the panel to the parameter node and runs detections). Needs Slicer's Qt
(``qt``, ``slicer.util`` dialogs); the scene work it asks for is done by the logic's parts, which ``tests/slicer``
runs on a real scene. Not unit-tested itself: pytest cannot create Qt widgets here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import qt
import slicer

from .export import dicom_seg_available, dicom_source_files
from .ground_truth import format_ground_truth_metrics
from .regions import RegionRow


class ResultsPanel:
    """Shows what the label map on screen holds and acts on it; ``parameters()`` returns the parameter node."""

    def __init__(self, ui: Any, logic: Any, parameters: Callable[[], Any]) -> None:
        self.ui = ui
        self.logic = logic
        self.parameters = parameters
        self.rows: list[RegionRow] = []
        self.segmentation = None  # the last segmentation made from the label map (exported with it)
        self._groundTruthKey = None

    def reset(self) -> None:
        self.rows, self.segmentation, self._groundTruthKey = [], None, None

    def show(self, summary: dict | None) -> None:
        """Summary text and regions table for the label map as it is now."""
        self.ui.summaryTextEdit.setPlainText(self.logic.summaryText(summary) if summary else "")
        label = self.parameters().labelVolume
        self.rows = self.logic.review.regionRows(label, summary) if summary else []
        table = self.ui.regionsTableWidget
        table.clearContents()
        table.setRowCount(len(self.rows))
        for rowIndex, row in enumerate(self.rows):
            for column, text in enumerate(row.cells()):
                table.setItem(rowIndex, column, qt.QTableWidgetItem(text))
        table.resizeColumnsToContents()

    def syncGroundTruth(self, appliedThreshold: float | None) -> None:
        """Recompute Dice/AUROC/AUPRC when the ground truth, the results or the applied threshold change."""
        p = self.parameters()
        nodes = (p.groundTruth, p.heatmapVolume, p.labelVolume)
        key = (*(n.GetID() if n else None for n in nodes), appliedThreshold)
        if key == self._groundTruthKey:
            return
        self._groundTruthKey = key
        self.ui.groundTruthMetricsLabel.text = ""
        if not all(nodes):
            return
        with slicer.util.tryWithErrorDisplay("Cannot compare with the ground truth.", waitCursor=True):
            metrics = self.logic.review.compareWithGroundTruth(p.heatmapVolume, p.labelVolume, p.groundTruth)
            self.ui.groundTruthMetricsLabel.text = format_ground_truth_metrics(metrics)

    def onRegionClicked(self, row: int, column: int) -> None:
        if 0 <= row < len(self.rows):
            with slicer.util.tryWithErrorDisplay("Cannot jump to the region."):
                point = self.logic.review.jumpToRegion(self.rows[row], self.parameters().labelVolume)
                if point is None:
                    self.ui.statusLabel.text = "This region has no centroid in the summary."

    def onCreateSegmentation(self) -> None:
        p = self.parameters()
        with slicer.util.tryWithErrorDisplay("Failed to create the segmentation.", waitCursor=True):
            self.segmentation = self.logic.review.createSegmentation(p.labelVolume, p.inputVolume)
            self.ui.statusLabel.text = (
                f"Created {self.segmentation.GetName()}; Export writes it as segmentation.seg.nrrd "
                "(and a DICOM SEG when the scan came from a DICOM series)."
            )

    def onExport(self) -> None:
        p = self.parameters()
        folder = qt.QFileDialog.getExistingDirectory(slicer.util.mainWindow(), "Export flagged volume to folder")
        if not folder:
            return
        with slicer.util.tryWithErrorDisplay("Export failed.", waitCursor=True):
            series = dicom_source_files(p.inputVolume) if dicom_seg_available() else []
            if series and not slicer.util.confirmYesNoDisplay(
                "The scan came from a DICOM series. Also write the label map as a DICOM Segmentation?"
            ):
                series = []
            segmentation = self.segmentation
            if segmentation is not None and self.logic.scene.GetNodeByID(segmentation.GetID()) is not segmentation:
                segmentation = None  # deleted by the user meanwhile
            written = self.logic.exporter.exportResults(
                folder, p.heatmapVolume, p.labelVolume, segmentationNode=segmentation, dicomSeries=series or None
            )
            self.ui.statusLabel.text = f"Wrote {', '.join(path.name for path in written)} to {folder}"
