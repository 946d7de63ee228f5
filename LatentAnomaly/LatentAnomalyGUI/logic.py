"""``LatentAnomalyLogic``: run the CLI on a scan, follow it, and bring its results into a given MRML scene.

The logic is composed of small parts, each given the scene (inside Slicer ``slicer.mrmlScene``, elsewhere any
``vtkMRMLScene``, e.g. one built on ``slicer-core``): ``nodes`` (read/write nodes, geometry), ``display``
(colours, slice layers, opacity, jumps), ``loader`` (results into the scene), ``review`` (re-threshold, regions,
segmentation, ground truth) and ``exporter`` (files). The file layer (``startDetectionOnFile``, ``modelInfo``,
...) needs no Slicer: it builds the command from :class:`DetectParameters`, hands it to an injected
:class:`ProcessRunner` and turns the output into a :class:`DetectionOutcome`. The base class is Slicer's
``ScriptedLoadableModuleLogic`` when Slicer's GUI modules exist, a stand-in otherwise.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .command import build_info_command, cli_environment
from .detection import DetectionOutcome, DetectParameters
from .display import ResultDisplay
from .export import ResultExporter
from .host import default_model_path, default_runner, library_root, logic_base, slicer_app, slicer_scene
from .nodes import SceneNodes
from .progress import ProgressTracker
from .results import format_summary, load_summary
from .review import ReviewTools
from .runner import ProcessRunner, RunResult, RunStatus
from .scene import ResultLoader

__all__ = ["DetectParameters", "DetectionOutcome", "LatentAnomalyLogic"]


class LatentAnomalyLogic(logic_base()):
    """Everything the module does that is not widgets, on ``scene``; ``runner`` and ``python`` are injectable."""

    def __init__(
        self,
        scene: Any = None,
        applicationLogic: Any = None,
        runner: ProcessRunner | None = None,
        python: str | None = None,
    ) -> None:
        super().__init__()
        if scene is None:
            scene, applicationLogic = slicer_scene()
        self.scene = scene
        self.nodes = SceneNodes(scene, applicationLogic)
        self.display = ResultDisplay(scene, applicationLogic)
        self.loader = ResultLoader(self.nodes, self.display)
        self.review = ReviewTools(self.nodes, self.display)
        self.exporter = ResultExporter(self.nodes)
        self.runner = runner if runner is not None else default_runner()
        self.python = python
        self.lastOutcome: DetectionOutcome | None = None
        self._workDir: Path | None = None
        self._dependenciesReady = False

    # ----- file layer (no Slicer) ---------------------------------------------------------------

    @staticmethod
    def pythonSlicerExecutable() -> str:
        """``PythonSlicer`` (on PATH inside Slicer), else this interpreter (tests, plain Python)."""
        return shutil.which("PythonSlicer") or sys.executable

    def pythonExecutable(self) -> str:
        return self.python or self.pythonSlicerExecutable()

    libraryRoot = staticmethod(library_root)
    defaultModelPath = staticmethod(default_model_path)

    def modelPathFor(self, parameters: DetectParameters) -> Path | None:
        return Path(parameters.modelPath) if parameters.modelPath else self.defaultModelPath()

    def environment(self) -> dict[str, str]:
        return cli_environment(self.libraryRoot())

    def buildCommand(self, inputPath: str | Path, outputDir: str | Path, parameters: DetectParameters) -> list[str]:
        return parameters.command(self.pythonExecutable(), inputPath, outputDir, self.modelPathFor(parameters))

    def isRunning(self) -> bool:
        return self.runner.is_running()

    def startDetectionOnFile(
        self,
        inputPath: str | Path,
        outputDir: str | Path,
        parameters: DetectParameters,
        onProgress: Callable[[float, str], None] | None = None,
        onFinished: Callable[[DetectionOutcome], None] | None = None,
    ) -> None:
        """Start ``detect`` on a scan file; returns at once, ``onFinished(outcome)`` is called once at the end."""
        if self.runner.is_running():
            raise RuntimeError("a detection is already running; cancel it or wait for it to finish")
        source = Path(inputPath).resolve()
        if not source.is_file():
            raise ValueError(f"{source}: no such scan file")
        target = Path(outputDir).resolve()
        args = self.buildCommand(source, target, parameters)  # validates before anything is created
        target.mkdir(parents=True, exist_ok=True)
        tracker = ProgressTracker(onProgress)
        modelPath = self.modelPathFor(parameters)

        def finished(result: RunResult) -> None:
            tracker.finish()
            outcome = self._outcome(result, tracker, target, modelPath)
            self.lastOutcome = outcome
            if onFinished is not None:
                onFinished(outcome)

        self.lastOutcome = None
        self.runner.start(args, tracker.feed, finished, env=self.environment(), cwd=self.libraryRoot())

    @staticmethod
    def _outcome(
        result: RunResult, tracker: ProgressTracker, outputDir: Path, modelPath: Path | None
    ) -> DetectionOutcome:
        outcome = DetectionOutcome(
            result.status, result.exit_code, outputDir, modelPath, log=tracker.log, notes=list(tracker.notes)
        )
        if result.status is RunStatus.CANCELLED:
            outcome.errorMessage = "cancelled"
        elif result.status is RunStatus.FAILED:
            outcome.errorMessage = result.message or tracker.failure_message(result.exit_code)
        else:
            try:
                outcome.summary = load_summary(outcome.summaryPath)
                for path in (outcome.heatmapPath, outcome.labelmapPath):
                    if not path.is_file():
                        raise ValueError(f"{path} was not written")
            except ValueError as error:
                outcome.status = RunStatus.FAILED
                outcome.errorMessage = f"the detection ended without usable results: {error}"
        return outcome

    def cancel(self) -> None:
        self.runner.cancel()

    def waitForFinished(self, timeout: float | None = None) -> bool:
        return self.runner.wait(timeout)

    def modelInfo(self, modelPath: str | Path | None = None, timeout: float = 300) -> dict[str, Any]:
        """``info --json`` of a bundle (name, version, scorers, thresholds); blocks while torch loads."""
        args = build_info_command(self.pythonExecutable(), modelPath or self.defaultModelPath())
        result = subprocess.run(
            args,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=self.environment(),
            cwd=self.libraryRoot(),
            check=False,
        )
        if result.returncode != 0:
            errors = [line[len("error: ") :] for line in result.stderr.splitlines() if line.startswith("error: ")]
            raise RuntimeError(
                errors[-1]
                if errors
                else f"model info failed (exit code {result.returncode}): {result.stderr.strip()[-300:]}"
            )
        return json.loads(result.stdout)

    @staticmethod
    def summaryText(summary: dict[str, Any]) -> str:
        return format_summary(summary)

    def missingDependencies(self) -> list[str]:
        """Requirements the CLI's interpreter lacks; only looks, never installs."""
        from .dependencies import missing_requirements, wanted_requirements

        return missing_requirements(wanted_requirements(), self.pythonExecutable(), self.environment())

    def ensureDependencies(self, ask: bool = True) -> bool:
        """Install missing Python packages after asking (Slicer only); cached once everything is there."""
        if not self._dependenciesReady:
            from .dependencies import ensure_dependencies

            self._dependenciesReady = ensure_dependencies(self.pythonExecutable(), self.environment(), ask=ask)
        return self._dependenciesReady

    def newWorkDir(self) -> Path:
        """A fresh temporary folder for one run; the previous run's folder is removed (its results are loaded)."""
        self.removeWorkDir()
        app = slicer_app()
        self._workDir = Path(tempfile.mkdtemp(prefix="LatentAnomaly-", dir=app.temporaryPath if app else None))
        return self._workDir

    def removeWorkDir(self) -> None:
        if self._workDir is not None and not self.runner.is_running():
            shutil.rmtree(self._workDir, ignore_errors=True)
            self._workDir = None

    def cleanup(self) -> None:
        if self.runner.is_running():
            self.runner.cancel()
            self.runner.wait(10)
        self.removeWorkDir()

    # ----- scene layer (any MRML scene; the parameter node needs Slicer) -------------------------

    def getParameterNode(self):
        from .parameters import LatentAnomalyParameterNode

        return LatentAnomalyParameterNode(super().getParameterNode())

    def startDetection(
        self,
        inputVolume,
        parameters: DetectParameters,
        onProgress: Callable[[float, str], None] | None = None,
        onFinished: Callable[[DetectionOutcome], None] | None = None,
        loadResults: bool = True,
    ) -> None:
        """Export ``inputVolume``, run the CLI on it and, on success, load and show heatmap and label map.

        With ``SubprocessRunner`` the callbacks run on its reader thread; pass ``loadResults=False`` and call
        :meth:`finishDetection` from the scene's thread (as :meth:`detectAndWait` does) when that matters.
        """
        if inputVolume is None:
            raise ValueError("select an input volume")
        if self.runner.is_running():
            raise RuntimeError("a detection is already running; cancel it or wait for it to finish")
        workDir = self.newWorkDir()
        inputPath = self.loader.exportInput(inputVolume, workDir / "input.nrrd")

        def finished(outcome: DetectionOutcome) -> None:
            outcome.inputPath = inputPath
            if loadResults:
                self.finishDetection(outcome, inputVolume)
            if onFinished is not None:
                onFinished(outcome)

        self.startDetectionOnFile(inputPath, workDir / "output", parameters, onProgress, finished)

    def finishDetection(self, outcome: DetectionOutcome, inputVolume) -> DetectionOutcome:
        """Load a successful outcome's files into the scene (a failure to load turns it into a failed outcome)."""
        if outcome.succeeded and outcome.heatmapNode is None:
            try:
                outcome.heatmapNode, outcome.labelNode = self.loader.loadResults(outcome, inputVolume)
            except Exception as error:  # report in the GUI like any failure
                outcome.status = RunStatus.FAILED
                outcome.errorMessage = f"could not load the results: {error}"
        return outcome

    def detectAndWait(
        self,
        inputVolume,
        parameters: DetectParameters,
        timeout: float | None = None,
        onProgress: Callable[[float, str], None] | None = None,
    ) -> DetectionOutcome:
        """Blocking variant for tests and scripts (the GUI freezes meanwhile); results load on this thread."""
        self.startDetection(inputVolume, parameters, onProgress, loadResults=False)
        if not self.waitForFinished(timeout):
            self.cancel()
            self.waitForFinished(30)
            raise TimeoutError(f"detection did not finish within {timeout} s")
        assert self.lastOutcome is not None
        return self.finishDetection(self.lastOutcome, inputVolume)

    @staticmethod
    def volumeGeometry(volumeNode) -> dict[str, list]:
        from .nodes import volume_geometry

        return volume_geometry(volumeNode)
