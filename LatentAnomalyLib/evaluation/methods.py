"""Evaluation methods: the heatmap each one produces on a loaded case, and the per-case metrics.

Every method is evaluated by the same code on the same voxels, the case's evaluation brain mask
(fixed once by :func:`.cases.load_case`). Methods:

- ``model`` / ``model:<scorer>``: the detection pipeline with a bundle scorer (latent scorers and
  the bundle's baselines ``residual`` and ``atlas``); label maps use the bundle's calibrated threshold;
- ``intensity:<sequence>[:high|low|abs]``: within-brain robust z-score of one sequence (no model);
  its label map uses the fixed rule z > 3 (no healthy cohort of that sequence to calibrate on);
- ``heatmaps``: heatmaps computed elsewhere (``<dir>/<case_id>.nii.gz`` on the case's grid).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from ..errors import InputError
from ..io.read import read_image
from ..score.baselines import DEFAULT_THRESHOLD, intensity_zscore
from ..score.components import label_components
from ..score.subject import subject_score
from . import metrics as M
from .cases import LoadedCase


@dataclass
class MethodOutput:
    """One method's result on one case, on the case's own grid."""

    heatmap: np.ndarray
    prediction: np.ndarray | None
    threshold: float | None
    subject_score: float | None
    seconds: float
    timings: dict[str, float] = field(default_factory=dict)


class ModelMethods:
    """Runs every bundle scorer asked for on one case with one preprocessing and one encoding."""

    def __init__(self, model: Any, scorers: Sequence[str], device: str, sequence: str):
        from ..pipeline import DetectOptions, Detector

        self.sequence = sequence
        self.detectors = {s: Detector(model, DetectOptions(scorer=s, device=device)) for s in scorers}
        self._last: tuple[sitk.Image, dict[str, Any], float] | None = None

    def _detect(self, image: sitk.Image) -> tuple[dict[str, Any], float]:
        """All scorers on ``image``, remembered for that image so a case is detected only once."""
        if self._last is None or self._last[0] is not image:
            names = list(self.detectors)
            t0 = time.perf_counter()
            results = self.detectors[names[0]].detect_scorers(image, names)
            self._last = (image, results, time.perf_counter() - t0)
        return self._last[1], self._last[2]

    def brain_mask(self, image: sitk.Image) -> np.ndarray:
        """The detector's own brain mask: evaluation pools over the same brain the model scored."""
        results, _ = self._detect(image)
        return next(iter(results.values())).preprocessed.native_mask

    def run(self, data: LoadedCase) -> dict[str, MethodOutput]:
        if self.sequence not in data.case.images:
            raise InputError(f"{data.case.case_id}: has no {self.sequence} scan for the model")
        results, total = self._detect(data.reference)  # load_case read this sequence as the reference
        out = {}
        for name, result in results.items():
            out[f"model:{name}"] = MethodOutput(
                sitk.GetArrayFromImage(result.heatmap),
                sitk.GetArrayFromImage(result.labelmap) > 0,
                result.summary["voxel_threshold"],
                result.summary["subject_score"],
                total / len(results),
                result.summary["timings_s"],
            )
        return out


def intensity_method(data: LoadedCase, sequence: str, direction: str) -> MethodOutput:
    t0 = time.perf_counter()
    if sequence not in data.case.images:
        raise InputError(f"{data.case.case_id}: has no {sequence} scan")
    image = read_image(data.case.images[sequence])
    array = sitk.GetArrayFromImage(image)
    if array.shape != data.brain.shape:
        raise InputError(f"{data.case.case_id}: {sequence} is not on the reference grid")
    heat = intensity_zscore(array, data.brain, direction)
    labels, _ = label_components(heat, DEFAULT_THRESHOLD, data.reference, 0.0)
    score = subject_score(heat, data.brain)
    return MethodOutput(heat, labels > 0, DEFAULT_THRESHOLD, score, time.perf_counter() - t0)


def external_method(data: LoadedCase, folder: Path, threshold: float | None) -> MethodOutput:
    t0 = time.perf_counter()
    path = folder / f"{data.case.case_id}.nii.gz"
    if not path.exists():
        raise InputError(f"{path}: no heatmap for case {data.case.case_id}")
    heat = sitk.GetArrayFromImage(read_image(path))
    if heat.shape != data.brain.shape:
        raise InputError(f"{path}: heatmap shape {heat.shape[::-1]} differs from the scan's {data.brain.shape[::-1]}")
    prediction = heat > threshold if threshold is not None else None
    return MethodOutput(heat, prediction, threshold, subject_score(heat, data.brain), time.perf_counter() - t0)


def case_metrics(data: LoadedCase, output: MethodOutput, min_lesion_ml: float = 0.0) -> dict[str, Any]:
    """Voxel and lesion metrics inside the evaluation brain mask; flagged fraction for every case. Ground-truth
    lesion components under ``min_lesion_ml`` are not counted in the lesion-wise metrics (0: every component)."""
    brain = data.brain
    row: dict[str, Any] = {"subject_score": output.subject_score, "seconds": round(output.seconds, 3)}
    if output.prediction is not None:
        row["flagged_fraction"] = float(output.prediction[brain].mean()) if brain.any() else None
        row["flagged_ml"] = float(output.prediction[brain].sum()) * float(np.prod(data.reference.GetSpacing())) / 1000
    if data.label is not None and data.label[brain].any():
        row.update(M.voxel_metrics(output.heatmap[brain], data.label[brain], output.threshold))
        if output.prediction is not None:
            lesions = M.lesion_metrics(
                output.prediction & brain, data.label & brain, tuple(data.reference.GetSpacing()[::-1]), min_lesion_ml
            )
            row.update({k: v for k, v in lesions.items() if not isinstance(v, list)})
    return row
