"""``LatentAnomalyLogic``: run the CLI on a scan, follow it, and bring its results into the scene.

Two layers in one class. The file layer (``startDetectionOnFile``, ``modelInfo``, ...) needs no
Slicer: it builds the command, hands it to an injected :class:`ProcessRunner` and turns the
output into a :class:`DetectionOutcome`; pytest drives it with a fake runner. The scene layer
(``startDetection``, ``loadResults``, ``rethreshold``, ...) imports ``slicer`` inside each method
and is exercised only by the module's self-test in Slicer. The base class is Slicer's
``ScriptedLoadableModuleLogic`` when Slicer is running, a stand-in otherwise; the methods that
work on MRML nodes come from :class:`SceneMixin` (``scene.py``) and :class:`ReviewMixin` (``review.py``).
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .command import build_detect_command, build_info_command, cli_environment
from .progress import ProgressTracker
from .results import format_summary, load_summary
from .review import ReviewMixin
from .runner import ProcessRunner, RunResult, RunStatus, SubprocessRunner
from .scene import SceneMixin

LIBRARY_PACKAGE = "LatentAnomalyLib"
DEFAULT_MODEL_NAME = "latent-anomaly-t1"


def _slicerApp() -> Any:
    """Slicer's application object if this runs inside Slicer, else None (never imports slicer)."""
    slicer = sys.modules.get("slicer")
    return getattr(slicer, "app", None) if slicer is not None else None


def _logicBase() -> type:
    if "slicer" in sys.modules:
        try:
            from slicer.ScriptedLoadableModule import ScriptedLoadableModuleLogic

            return ScriptedLoadableModuleLogic
        except ImportError:
            pass

    class StandaloneLogic:
        """Stand-in for ``ScriptedLoadableModuleLogic`` outside Slicer (pytest, scripts)."""

        def __init__(self, parent: Any = None) -> None:
            self.moduleName = "LatentAnomaly"

    return StandaloneLogic


def defaultRunner() -> ProcessRunner:
    """QProcess in Slicer (callbacks on the GUI thread, where MRML may be touched), subprocess elsewhere."""
    if _slicerApp() is not None:
        from .qt_runner import QtProcessRunner

        return QtProcessRunner()
    return SubprocessRunner()


@dataclass
class DetectParameters:
    """What the user chose; ``None`` means the model's default (bundled model, default scorer, calibrated threshold)."""

    modelPath: Path | None = None
    scorer: str | None = None
    device: str = "auto"
    skull: str = "auto"
    threshold: float | None = None


@dataclass
class DetectionOutcome:
    status: RunStatus
    exitCode: int | None
    outputDir: Path
    modelPath: Path | None = None
    errorMessage: str = ""
    log: str = ""
    notes: list[str] = field(default_factory=list)
    summary: dict[str, Any] | None = None
    heatmapNode: Any = None
    labelNode: Any = None

    @property
    def succeeded(self) -> bool:
        return self.status is RunStatus.SUCCEEDED

    @property
    def heatmapPath(self) -> Path:
        return self.outputDir / "heatmap.nii.gz"

    @property
    def labelmapPath(self) -> Path:
        return self.outputDir / "labelmap.nii.gz"

    @property
    def summaryPath(self) -> Path:
        return self.outputDir / "summary.json"


class LatentAnomalyLogic(SceneMixin, ReviewMixin, _logicBase()):
    """Everything the module does that is not widgets. ``runner`` and ``python`` are injectable for tests."""

    def __init__(self, runner: ProcessRunner | None = None, python: str | None = None) -> None:
        super().__init__()
        self.runner = runner if runner is not None else defaultRunner()
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

    @staticmethod
    def libraryRoot() -> Path | None:
        """The folder holding the ``LatentAnomalyLib`` package.

        Installed: the module folder (CMake copies the package beside ``LatentAnomaly.py``);
        source tree: the repository root; else wherever Python finds it (pip install).
        """
        here = Path(__file__).resolve().parent
        for candidate in (here.parent, here.parent.parent):
            if (candidate / LIBRARY_PACKAGE / "__init__.py").is_file():
                return candidate
        spec = importlib.util.find_spec(LIBRARY_PACKAGE)
        return Path(spec.origin).resolve().parent.parent if spec is not None and spec.origin else None

    @classmethod
    def defaultModelPath(cls) -> Path | None:
        """``models/latent-anomaly-t1`` next to the library (where the library itself looks for it)."""
        root = cls.libraryRoot()
        candidate = root / "models" / DEFAULT_MODEL_NAME if root is not None else None
        return candidate if candidate is not None and candidate.is_dir() else None

    def modelPathFor(self, parameters: DetectParameters) -> Path | None:
        return Path(parameters.modelPath) if parameters.modelPath else self.defaultModelPath()

    def environment(self) -> dict[str, str]:
        return cli_environment(self.libraryRoot())

    def buildCommand(self, inputPath: str | Path, outputDir: str | Path, parameters: DetectParameters) -> list[str]:
        return build_detect_command(
            self.pythonExecutable(),
            inputPath,
            outputDir,
            self.modelPathFor(parameters),
            parameters.scorer,
            parameters.device,
            parameters.skull,
            parameters.threshold,
        )

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
        app = _slicerApp()
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

    # ----- scene layer (Slicer only) ------------------------------------------------------------

    def getParameterNode(self):
        from .parameters import LatentAnomalyParameterNode

        return LatentAnomalyParameterNode(super().getParameterNode())

    def startDetection(
        self,
        inputVolume,
        parameters: DetectParameters,
        onProgress: Callable[[float, str], None] | None = None,
        onFinished: Callable[[DetectionOutcome], None] | None = None,
    ) -> None:
        """Export ``inputVolume``, run the CLI on it and, on success, load and show heatmap and label map."""
        if inputVolume is None:
            raise ValueError("select an input volume")
        if self.runner.is_running():
            raise RuntimeError("a detection is already running; cancel it or wait for it to finish")
        workDir = self.newWorkDir()
        inputPath = self.exportVolume(inputVolume, workDir / "input.nrrd")

        def finished(outcome: DetectionOutcome) -> None:
            if outcome.succeeded:
                try:
                    outcome.heatmapNode, outcome.labelNode = self.loadResults(outcome, inputVolume)
                except Exception as error:  # report in the GUI like any failure
                    outcome.status = RunStatus.FAILED
                    outcome.errorMessage = f"could not load the results: {error}"
            if onFinished is not None:
                onFinished(outcome)

        self.startDetectionOnFile(inputPath, workDir / "output", parameters, onProgress, finished)

    def detectAndWait(
        self, inputVolume, parameters: DetectParameters, timeout: float | None = None
    ) -> DetectionOutcome:
        """Blocking variant for tests and scripts (the GUI freezes meanwhile)."""
        self.startDetection(inputVolume, parameters)
        if not self.waitForFinished(timeout):
            self.cancel()
            self.waitForFinished(30)
            raise TimeoutError(f"detection did not finish within {timeout} s")
        assert self.lastOutcome is not None
        return self.lastOutcome
