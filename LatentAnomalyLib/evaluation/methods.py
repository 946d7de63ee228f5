"""Evaluation of heatmaps against ground truth: per case, pooled, lesion-wise and subject-wise.

Every method is evaluated by the same code on the same voxels: each case's evaluation brain mask
is fixed once (a given brain mask, else the library's brain mask of the case's reference scan),
independently of the method. Methods:

- ``model`` / ``model:<scorer>``: the detection pipeline with a bundle scorer (latent scorers and
  the bundle's baselines ``residual`` and ``atlas``); label maps use the bundle's calibrated threshold;
- ``intensity:<sequence>[:high|low|abs]``: within-brain robust z-score of one sequence (no model);
  its label map uses the fixed rule z > 3 (no healthy cohort of that sequence to calibrate on);
- ``heatmaps``: heatmaps computed elsewhere (``<dir>/<case_id>.nii.gz`` on the case's grid).
"""

from __future__ import annotations

import csv
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


@dataclass
class EvalCase:
    case_id: str
    images: dict[str, Path]
    label: Path | None = None
    brain_mask: Path | None = None
    healthy: bool = False


@dataclass
class MethodOutput:
    """One method's result on one case, on the case's own grid."""

    heatmap: np.ndarray
    prediction: np.ndarray | None
    threshold: float | None
    subject_score: float | None
    seconds: float
    timings: dict[str, float] = field(default_factory=dict)


@dataclass
class CaseData:
    case: EvalCase
    reference: sitk.Image
    brain: np.ndarray
    label: np.ndarray | None


def _truthy(text: str | None) -> bool:
    return str(text or "").strip().lower() in ("1", "true", "yes", "healthy")


def read_cases_csv(path: str | Path) -> list[EvalCase]:
    """Cases from a CSV: case_id, sequence columns (t1, t2, flair, ...), label, brain_mask, healthy."""
    source = Path(path)
    if not source.is_file():
        raise InputError(f"{source}: no such cases file")
    base = source.parent
    rows = list(csv.DictReader(source.read_text().splitlines()))
    if not rows or "case_id" not in rows[0]:
        raise InputError(f"{source}: needs a header with a case_id column and one column per sequence")
    reserved = {"case_id", "label", "brain_mask", "healthy"}
    cases = []
    for row in rows:

        def resolve(value: str | None) -> Path | None:
            return (base / value).resolve() if value else None

        images = {k: resolve(v) for k, v in row.items() if k not in reserved and v}
        if not images:
            raise InputError(f"{source}: case {row['case_id']} lists no image")
        cases.append(
            EvalCase(
                row["case_id"],
                images,
                resolve(row.get("label")),
                resolve(row.get("brain_mask")),
                _truthy(row.get("healthy")),
            )
        )
    return cases


def brats_folder_cases(folder: str | Path) -> list[EvalCase]:
    root = Path(folder)
    if not root.is_dir():
        raise InputError(f"{root}: no such folder")
    cases = []
    for case_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        name = case_dir.name
        images = {
            seq: case_dir / f"{name}_{seq}.nii.gz"
            for seq in ("t1", "t2", "flair")
            if (case_dir / f"{name}_{seq}.nii.gz").exists()
        }
        if images:
            seg = case_dir / f"{name}_seg.nii.gz"
            cases.append(EvalCase(name, images, seg if seg.exists() else None))
    if not cases:
        raise InputError(f"{root}: no case folders laid out like BraTS (<case>/<case>_t1.nii.gz)")
    return cases


def load_case(case: EvalCase, reference_sequence: str, brain_from: Any) -> CaseData:
    """Read the reference scan, the evaluation brain mask and the ground truth (label > 0)."""
    sequence = reference_sequence if reference_sequence in case.images else next(iter(case.images))
    reference = read_image(case.images[sequence])
    if case.brain_mask is not None:
        brain = sitk.GetArrayFromImage(sitk.ReadImage(str(case.brain_mask))) > 0
    else:
        brain = brain_from(reference)
    label = None
    if case.label is not None:
        label = sitk.GetArrayFromImage(sitk.ReadImage(str(case.label))) > 0
        if label.shape != brain.shape:
            raise InputError(
                f"{case.case_id}: ground truth shape {label.shape[::-1]} differs from the scan's {brain.shape[::-1]}"
            )
    return CaseData(case, reference, brain, label)


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

    def run(self, data: CaseData) -> dict[str, MethodOutput]:
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


def intensity_method(data: CaseData, sequence: str, direction: str) -> MethodOutput:
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


def external_method(data: CaseData, folder: Path, threshold: float | None) -> MethodOutput:
    t0 = time.perf_counter()
    path = folder / f"{data.case.case_id}.nii.gz"
    if not path.exists():
        raise InputError(f"{path}: no heatmap for case {data.case.case_id}")
    heat = sitk.GetArrayFromImage(read_image(path))
    if heat.shape != data.brain.shape:
        raise InputError(f"{path}: heatmap shape {heat.shape[::-1]} differs from the scan's {data.brain.shape[::-1]}")
    prediction = heat > threshold if threshold is not None else None
    return MethodOutput(heat, prediction, threshold, subject_score(heat, data.brain), time.perf_counter() - t0)


def case_metrics(data: CaseData, output: MethodOutput) -> dict[str, Any]:
    """Voxel and lesion metrics inside the evaluation brain mask; flagged fraction for every case."""
    brain = data.brain
    row: dict[str, Any] = {"subject_score": output.subject_score, "seconds": round(output.seconds, 3)}
    if output.prediction is not None:
        row["flagged_fraction"] = float(output.prediction[brain].mean()) if brain.any() else None
        row["flagged_ml"] = float(output.prediction[brain].sum()) * float(np.prod(data.reference.GetSpacing())) / 1000
    if data.label is not None and data.label[brain].any():
        row.update(M.voxel_metrics(output.heatmap[brain], data.label[brain], output.threshold))
        if output.prediction is not None:
            lesions = M.lesion_metrics(
                output.prediction & brain, data.label & brain, tuple(data.reference.GetSpacing()[::-1])
            )
            row.update({k: v for k, v in lesions.items() if not isinstance(v, list)})
    return row
