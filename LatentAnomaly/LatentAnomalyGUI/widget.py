"""``LatentAnomalyWidget``: the module panel. Needs Slicer; not unit-tested (pytest cannot create Qt widgets here).

The widget only wires controls to the logic: Detect starts the CLI asynchronously (progress bar,
Cancel), the threshold slider re-thresholds the loaded heatmap in place after a short pause, the
opacity slider fades the heatmap over the scan, the results box shows the summary, the regions table
jumps the slice views to a flagged component, and a chosen ground truth gets Dice, AUROC and AUPRC.
Every action runs inside ``slicer.util.tryWithErrorDisplay`` so a failure becomes a message box, not
a traceback in the Python console.
"""

from __future__ import annotations

import sys

import qt
import slicer
import vtk
from slicer.ScriptedLoadableModule import ScriptedLoadableModuleWidget
from slicer.util import VTKObservationMixin

from .detection import DetectionOutcome, DetectParameters
from .logic import LatentAnomalyLogic
from .regions import COLUMNS
from .results import format_model_info
from .results_panel import ResultsPanel
from .review import summary_of
from .runner import RunStatus

RETHRESHOLD_DELAY_MS = 300  # re-threshold once the slider rests, not on every pixel of a drag
SLIDER_STEPS = 200


class LatentAnomalyWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """The panel; ``logic`` is injectable (tests, other scenes), else one on ``slicer.mrmlScene`` is made in setup."""

    def __init__(self, parent=None, logic: LatentAnomalyLogic | None = None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic: LatentAnomalyLogic | None = logic
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self._resultsKey = None
        self.results: ResultsPanel | None = None
        self._appliedThreshold: float | None = None
        self._updatingSlider = False
        self._syncing = False
        self._running = False

    # ----- Slicer module widget protocol --------------------------------------------------------

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/LatentAnomaly.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        if self.logic is None:
            self.logic = LatentAnomalyLogic(slicer.mrmlScene, slicer.app.applicationLogic())
        self.results = ResultsPanel(self.ui, self.logic, lambda: self._parameterNode)

        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)

        self.ui.detectButton.connect("clicked(bool)", self.onDetect)
        self.ui.cancelButton.connect("clicked(bool)", self.onCancel)
        self.ui.modelInfoButton.connect("clicked(bool)", self.onModelInfo)
        self.ui.thresholdSliderWidget.connect("valueChanged(double)", self.onSliderChanged)
        self.ui.resetThresholdButton.connect("clicked(bool)", self.onResetThreshold)
        self.ui.exportButton.connect("clicked(bool)", self.results.onExport)
        self.ui.segmentationButton.connect("clicked(bool)", self.results.onCreateSegmentation)
        self.ui.opacitySliderWidget.connect("valueChanged(double)", self.onOpacityChanged)
        self.ui.regionsTableWidget.connect("cellClicked(int,int)", self.results.onRegionClicked)
        self.ui.regionsTableWidget.setHorizontalHeaderLabels(list(COLUMNS))

        self._rethresholdTimer = qt.QTimer()
        self._rethresholdTimer.setSingleShot(True)
        self._rethresholdTimer.setInterval(RETHRESHOLD_DELAY_MS)
        self._rethresholdTimer.connect("timeout()", self.onApplyRethreshold)

        self.ui.progressBar.setVisible(False)
        self.ui.cancelButton.setEnabled(False)
        self.initializeParameterNode()

    def cleanup(self) -> None:
        self.removeObservers()
        if hasattr(self, "_rethresholdTimer"):
            self._rethresholdTimer.stop()
        if self.logic is not None:
            self.logic.cleanup()  # a running detection is killed with its process tree

    def enter(self) -> None:
        self.initializeParameterNode()

    def exit(self) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._onParameterNodeModified)

    def onSceneStartClose(self, caller, event) -> None:
        self.setParameterNode(None)
        self._resultsKey = None
        self.results.reset()
        self._appliedThreshold = None

    def onSceneEndClose(self, caller, event) -> None:
        if self.parent.isEntered:
            self.initializeParameterNode()

    def onReload(self) -> None:
        """Drop this package from ``sys.modules`` so Reload picks up edits in every file, not just LatentAnomaly.py."""
        package = __name__.rsplit(".", 1)[0]
        for name in [n for n in sys.modules if n == package or n.startswith(package + ".")]:
            del sys.modules[name]
        ScriptedLoadableModuleWidget.onReload(self)

    def initializeParameterNode(self) -> None:
        self.setParameterNode(self.logic.getParameterNode())
        if not self._parameterNode.inputVolume:
            for node in slicer.util.getNodesByClass("vtkMRMLScalarVolumeNode"):
                if not node.IsA("vtkMRMLLabelMapVolumeNode"):
                    self._parameterNode.inputVolume = node
                    break

    def setParameterNode(self, inputParameterNode) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._onParameterNodeModified)
        self._parameterNode = inputParameterNode
        if self._parameterNode:
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._onParameterNodeModified)
            self._onParameterNodeModified()

    # ----- keeping the panel in step with the parameter node ------------------------------------

    def _onParameterNodeModified(self, caller=None, event=None) -> None:
        if self._syncing or self._parameterNode is None:
            return
        self._syncing = True
        try:
            self._syncResults()
            self._syncSlider()
            self._scheduleRethreshold()
            self.results.syncGroundTruth(self._appliedThreshold)
            self._updateButtons()
        finally:
            self._syncing = False

    def _syncResults(self) -> None:
        """When another heatmap/label map is selected: new slider range, its threshold, its summary."""
        p = self._parameterNode
        heat, label = p.heatmapVolume, p.labelVolume
        key = (heat.GetID() if heat else None, label.GetID() if label else None)
        if key == self._resultsKey:
            return
        self._resultsKey = key
        self._rethresholdTimer.stop()
        summary = summary_of(label)
        threshold = float(summary["voxel_threshold"]) if summary else None
        if heat is not None and heat.GetImageData() is not None:
            low, high = heat.GetImageData().GetScalarRange()
            if threshold is not None:
                low, high = min(low, threshold), max(high, threshold)
            self._updatingSlider = True
            try:
                self.ui.thresholdSliderWidget.minimum = min(low, 0.0)
                self.ui.thresholdSliderWidget.maximum = high if high > low else low + 1.0
                self.ui.thresholdSliderWidget.singleStep = max((high - low) / SLIDER_STEPS, 1e-4)  # 4 decimals
            finally:
                self._updatingSlider = False
        self._appliedThreshold = threshold
        if threshold is not None:
            p.threshold = threshold
        self.results.show(summary)
        self.logic.display.setHeatmapOpacity(heat, p.heatmapOpacity)

    def _syncSlider(self) -> None:
        value = self._parameterNode.threshold
        if abs(self.ui.thresholdSliderWidget.value - value) > 1e-9:
            self._updatingSlider = True
            try:
                self.ui.thresholdSliderWidget.value = value
            finally:
                self._updatingSlider = False

    def _scheduleRethreshold(self) -> None:
        p = self._parameterNode
        if (
            p.heatmapVolume
            and p.labelVolume
            and self._appliedThreshold is not None
            and p.threshold != self._appliedThreshold
        ):
            self._rethresholdTimer.start()

    def _updateButtons(self) -> None:
        p = self._parameterNode
        self.ui.detectButton.enabled = bool(p.inputVolume) and not self._running
        self.ui.cancelButton.enabled = self._running
        haveResults = bool(p.labelVolume)
        for button in (self.ui.exportButton, self.ui.segmentationButton, self.ui.resetThresholdButton):
            button.enabled = haveResults
        self.ui.thresholdSliderWidget.enabled = bool(p.heatmapVolume) and haveResults

    def _setRunning(self, running: bool, status: str) -> None:
        self._running = running
        self.ui.progressBar.setVisible(running)
        if running:
            self.ui.progressBar.value = 0
        self.ui.inputsCollapsibleButton.enabled = not running
        self.ui.advancedCollapsibleButton.enabled = not running
        self.ui.statusLabel.text = status
        if self._parameterNode is not None:
            self._updateButtons()

    def _modelPath(self):
        path = self._parameterNode.modelPath
        return None if str(path).strip() in ("", ".") else path

    # ----- actions ------------------------------------------------------------------------------

    def onDetect(self) -> None:
        with slicer.util.tryWithErrorDisplay("Failed to start the detection.", waitCursor=True):
            if not self.logic.ensureDependencies():
                return
            p = self._parameterNode
            parameters = DetectParameters.fromParameterNode(p)
            self._setRunning(True, "Starting...")
            try:
                self.logic.startDetection(p.inputVolume, parameters, self._onProgress, self._onFinished)
            except Exception:
                self._setRunning(False, "Not started.")
                raise

    def _onProgress(self, fraction: float, stage: str) -> None:
        self.ui.progressBar.value = round(100 * fraction)
        self.ui.statusLabel.text = f"{stage}..."

    def _onFinished(self, outcome: DetectionOutcome) -> None:
        if outcome.status is RunStatus.CANCELLED:
            self._setRunning(False, "Cancelled.")
            return
        if not outcome.succeeded:
            self._setRunning(False, "Failed.")
            slicer.util.errorDisplay(f"Detection failed: {outcome.errorMessage}", detailedText=outcome.log)
            return
        total = (outcome.summary.get("timings_s") or {}).get("total")
        self._setRunning(False, f"Done in {total:.0f} s." if isinstance(total, int | float) else "Done.")
        with slicer.util.tryWithErrorDisplay("Failed to show the results."):
            p = self._parameterNode
            p.heatmapVolume = outcome.heatmapNode
            p.labelVolume = outcome.labelNode
            if p.createSegmentation:
                self.results.segmentation = self.logic.review.createSegmentation(outcome.labelNode, p.inputVolume)

    def onCancel(self) -> None:
        with slicer.util.tryWithErrorDisplay("Failed to cancel the detection."):
            self.ui.statusLabel.text = "Cancelling..."
            self.logic.cancel()

    def onModelInfo(self) -> None:
        with slicer.util.tryWithErrorDisplay("Cannot read the model.", waitCursor=True):
            if not self.logic.ensureDependencies():
                return
            info = self.logic.modelInfo(self._modelPath())
            self.ui.summaryTextEdit.setPlainText(format_model_info(info))
            self.ui.scorerLineEdit.setCompleter(qt.QCompleter(list(info.get("scorers") or [])))
            p = self._parameterNode
            scorer = p.scorer.strip() or info.get("default_scorer")
            thresholds = (info.get("thresholds") or {}).get(scorer)
            if thresholds and not p.overrideThreshold and not p.labelVolume:
                p.threshold = float(thresholds["voxel"])  # a sensible start if the user wants to override

    def onSliderChanged(self, value: float) -> None:
        if not self._updatingSlider and self._parameterNode is not None:
            self._parameterNode.threshold = value

    def onApplyRethreshold(self) -> None:
        p = self._parameterNode
        if p is None or not p.heatmapVolume or not p.labelVolume:
            return
        value = p.threshold
        with slicer.util.tryWithErrorDisplay("Re-thresholding failed.", waitCursor=True):
            summary = self.logic.review.rethreshold(p.heatmapVolume, p.labelVolume, value)
            self._appliedThreshold = value
            if summary is not None:
                self.results.show(summary)
            self.results.syncGroundTruth(self._appliedThreshold)  # the Dice follows the new label map

    def onOpacityChanged(self, value: float) -> None:
        if self._parameterNode is not None:
            self.logic.display.setHeatmapOpacity(self._parameterNode.heatmapVolume, value)

    def onResetThreshold(self) -> None:
        summary = summary_of(self._parameterNode.labelVolume)
        if summary:
            self._parameterNode.threshold = float(summary.get("detected_voxel_threshold", summary["voxel_threshold"]))
