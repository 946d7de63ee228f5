"""What one detection is asked to do and what came out of it: the module's detection parameters, in one place.

:class:`DetectParameters` holds every option of a run with its default (``None`` means the model's own: bundled
model, default scorer, calibrated threshold), checks them, turns them into the CLI's arguments and reads them
from the panel's parameter node. :class:`DetectionOutcome` is what the logic reports when the CLI ends. Plain
Python: tested without Slicer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .command import build_detect_command
from .runner import RunStatus


@dataclass
class DetectParameters:
    """What the user chose; ``None`` means the model's default (bundled model, default scorer, calibrated threshold)."""

    modelPath: Path | None = None
    scorer: str | None = None
    device: str = "auto"
    skull: str = "auto"
    threshold: float | None = None
    alpha: float = 0.05
    age: float | None = None  # years; None: p-values against every calibration scan

    @classmethod
    def fromParameterNode(cls, node: Any) -> DetectParameters:
        """The parameters the panel shows (``LatentAnomalyParameterNode``); empty texts mean the defaults."""
        modelPath = getattr(node, "modelPath", None)
        modelPath = None if modelPath is None or str(modelPath).strip() in ("", ".") else Path(modelPath)
        scorer = (getattr(node, "scorer", "") or "").strip() or None
        threshold = float(node.threshold) if getattr(node, "overrideThreshold", False) else None
        age = float(getattr(node, "patientAge", -1.0))
        alpha = float(getattr(node, "alpha", 0.05))
        return cls(modelPath, scorer, node.device, node.skullMode, threshold, alpha, age if age >= 0 else None)

    def command(self, python: str, inputPath: str | Path, outputDir: str | Path, modelPath: Path | None) -> list[str]:
        """The ``detect`` command line for these parameters (``ValueError`` when one is invalid)."""
        return build_detect_command(
            python, inputPath, outputDir, modelPath, self.scorer, self.device, self.skull, self.threshold, self.alpha,
            self.age,
        )


@dataclass
class DetectionOutcome:
    """How a run ended, its log, the summary it wrote and, once loaded into a scene, its nodes."""

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
    inputPath: Path | None = None

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
