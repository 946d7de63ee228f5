"""Detection: the only place where the stages are chained (the CLI, and through it the Slicer module, runs it; so do
tests, benchmarks and evaluation).

scan -> preprocess (brain mask, registration, model grid, normalisation) -> encoder -> scorer ->
post-processing on the model grid -> exact inverse mapping to the scan's grid -> threshold and
connected components in the scan's own voxels -> heatmap, label map and summary.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import SimpleITK as sitk
import torch

from .bundle.model import Model
from .encode.devices import resolve_device
from .encode.encoding import encode
from .errors import InputError
from .outputs.detection_summary import detection_summary
from .preprocess.chain import Preprocessed, Preprocessor
from .score.age_bands import calibration_for_age, check_age
from .score.base import EncodedScan, needs_mirror
from .score.components import label_components
from .score.conformal import (
    DEFAULT_ALPHA,
    CalibrationSets,
    check_alpha,
    decision_threshold,
    finite_number,
    load_sets,
)
from .score.postprocess import PostprocessConfig, postprocess
from .score.scan_decision import DecisionEvidence, decision_evidence, describe_decision
from .score.subject import map_statistic

Progress = Callable[[str, float], None]


def _quiet(stage: str, fraction: float) -> None:
    return None


@dataclass
class DetectOptions:
    scorer: str | None = None
    skull: str = "auto"
    device: str = "auto"
    threshold: float | None = None
    alpha: float = DEFAULT_ALPHA  # subject flag and region false-positive rate (bundles with calibration sets)
    regions: str | None = None  # "calibrated" (p <= alpha) or "all" (voxel threshold); None: "all" with --threshold
    age: float | None = None  # patient age in years: p-values against the calibration scans of its band (age_bands.py)


REGION_MODES = ("calibrated", "all")
NO_SETS_NOTE = (
    "model {model} has no conformal calibration sets for scorer {scorer}: no p-values; the subject flag and "
    "the label map use the calibrated thresholds (model 1.4.0 rules)"
)


@dataclass
class DetectionResult:
    heatmap: sitk.Image
    labelmap: sitk.Image
    summary: dict[str, Any]
    preprocessed: Preprocessed
    model_heatmap: np.ndarray
    messages: list[str] = field(default_factory=list)


class Detector:
    """Run a loaded model on scans; one instance can process many scans."""

    def __init__(self, model: Model, options: DetectOptions | None = None, progress: Progress | None = None):
        self.model = model
        self.options = options or DetectOptions()
        self.progress = progress or _quiet
        self.scorer_name = self.options.scorer or model.default_scorer
        if self.scorer_name not in model.scorers:
            raise ValueError(
                f"scorer {self.scorer_name!r} is not in model {model.name}; it has: {', '.join(model.scorers)}"
            )
        self.scorer = model.scorers[self.scorer_name]
        self.device, message = resolve_device(self.options.device)
        self.messages = [message] if message else []
        self.preprocessor = Preprocessor(model.preprocess, model.template, model.brainmask_net)
        try:
            check_alpha(self.options.alpha)
        except ValueError as error:
            raise InputError(f"--alpha: {error}") from None
        if self.options.regions not in (None, *REGION_MODES):
            raise InputError(f"--regions must be one of {', '.join(REGION_MODES)}, got {self.options.regions!r}")
        self._sets: dict[str, CalibrationSets | None] = {}
        if self.options.age is not None:  # checked before detection starts
            label = f"{model.name} {model.version} ({self.scorer_name})"
            try:
                sets = self.calibration_sets(self.scorer_name)
                if sets is None:
                    raise ValueError(f"model {label} has no conformal calibration sets; run without --age")
                calibration_for_age(sets, check_age(self.options.age), label)
            except ValueError as error:
                raise InputError(f"--age: {error}") from None
        if self.options.regions == "calibrated" and self.options.threshold is not None:
            raise InputError("--regions calibrated needs the calibrated voxel threshold; drop --threshold")

    def calibration_sets(self, name: str) -> CalibrationSets | None:
        """The scorer's conformal calibration sets (loaded once), or ``None`` for older bundles."""
        if name not in self._sets:
            self._sets[name] = load_sets(self.model, name)
        return self._sets[name]

    def encode(
        self, pre: Preprocessed, reconstruction: bool | None = None, mirrored: bool | None = None
    ) -> EncodedScan:
        """The scan's latent map, and the reconstruction or the mirrored image's latent map when a scorer needs them."""
        need = "reconstruction" in self.scorer.needs if reconstruction is None else reconstruction
        mirror = needs_mirror(self.scorer) if mirrored is None else mirrored
        stats = (self.model.latent_mean, self.model.latent_std)
        out = encode(
            self.model.encoder, pre.image[None], self.device, mirrored=mirror, reconstruction=need, stats=stats
        )
        self.device = out.device
        if out.message:
            self.messages.append(out.message)
        recon, filtered = (out.reconstructions[0], out.filtered[0]) if need else (None, None)
        encoded = EncodedScan(pre.image, pre.mask, out.latents[0], recon, filtered=filtered)
        encoded.mirrored_latent = out.mirrored[0] if mirror else None
        return encoded

    def preprocess(self, image: sitk.Image, timings: dict[str, float]) -> Preprocessed:
        t = time.perf_counter()
        self.progress("preprocess", 0.0)
        self.preprocessor.device = self.device
        with torch.inference_mode():
            pre = self.preprocessor.run(image, self.options.skull)
        timings["preprocess"] = time.perf_counter() - t
        timings.update({f"preprocess.{k}": v for k, v in pre.timings.items()})
        return pre

    def detect(self, image: sitk.Image) -> DetectionResult:
        """Heatmap, label map and summary of one scan with this detector's scorer."""
        return self.detect_scorers(image, [self.scorer_name])[self.scorer_name]

    def detect_scorers(self, image: sitk.Image, names: list[str]) -> dict[str, DetectionResult]:
        """Run several scorers of the model on one scan, preprocessing and encoding it once."""
        unknown = [n for n in names if n not in self.model.scorers]
        if unknown:
            raise ValueError(f"scorer(s) {', '.join(unknown)} not in model {self.model.name}")
        timings: dict[str, float] = {}
        pre = self.preprocess(image, timings)
        t = time.perf_counter()
        self.progress("encode", 0.45)
        need = any("reconstruction" in self.model.scorers[n].needs for n in names)
        encoded = self.encode(pre, need, any(needs_mirror(self.model.scorers[n]) for n in names))
        timings["encode"] = time.perf_counter() - t
        results = {}
        for i, name in enumerate(names):
            results[name] = self._finish(image, pre, encoded, name, dict(timings), 0.6 + 0.4 * i / len(names))
        self.progress("done", 1.0)
        return results

    def _finish(
        self,
        image: sitk.Image,
        pre: Preprocessed,
        encoded: EncodedScan,
        name: str,
        timings: dict[str, float],
        fraction: float,
    ) -> DetectionResult:
        scorer = self.model.scorers[name]
        calibration = self.model.calibration["scorers"][name]
        t = time.perf_counter()
        self.progress("score", fraction)
        raw = scorer.score(encoded)
        timings["score"] = time.perf_counter() - t

        t = time.perf_counter()
        model_heatmap = postprocess(raw, pre.mask, PostprocessConfig(**calibration.get("postprocess", {})))
        timings["postprocess"] = time.perf_counter() - t

        t = time.perf_counter()
        self.progress("map to scan", min(fraction + 0.1, 0.95))
        heatmap = pre.to_native(model_heatmap, self.model.preprocess.grid)
        user = self.options.threshold is not None and name == self.scorer_name
        threshold = float(self.options.threshold if user else calibration["voxel_threshold"])
        min_ml = float(calibration.get("min_component_ml", 0.1))
        heat = sitk.GetArrayFromImage(heatmap)
        ids, components = label_components(heat, threshold, heatmap, min_ml, ids=True)
        sets = self.calibration_sets(name)
        if user and sets is not None and sets.uses_region_peak:  # the subject flag reads the calibrated regions
            calibrated = label_components(heat, sets.voxel_threshold, heatmap, min_ml)[1]
        else:
            calibrated = components
        peak = max((c["peak_score"] for c in calibrated), default=0.0)
        decision = None
        decides = self.model.decision_scorer(name)
        if sets is not None and decides is not None and self.calibration_sets(decides) is not None:
            grid = self.model.preprocess.grid
            threshold_d = self.calibration_sets(decides).voxel_threshold
            decision = decision_evidence(
                self.model, decides, name, encoded, model_heatmap, lambda m: pre.to_native(m, grid), threshold_d
            )
        labels, conformal = self._conformal(name, raw, pre.mask, ids, components, user, float(peak), decision)
        labelmap = sitk.GetImageFromArray(labels)
        labelmap.CopyInformation(image)
        timings["map_to_scan"] = time.perf_counter() - t
        kept = conformal.pop("kept")
        summary = detection_summary(self, pre, raw, heatmap, labels, kept, threshold, timings, name, user)
        summary["model"]["decision_scorer"] = decision.scorer if decision else None  # None: this map decided
        summary.update(conformal)
        return DetectionResult(heatmap, labelmap, summary, pre, model_heatmap, list(self.messages))

    def _conformal(
        self,
        name: str,
        raw: np.ndarray,
        mask: np.ndarray,
        ids: np.ndarray,
        components: list[dict[str, Any]],
        user_threshold: bool,
        region_peak: float,
        decision: DecisionEvidence | None = None,
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Label map (uint8) and the summary's p-value fields, by the calibration sets' rule or, without
        them, by the voxel threshold alone (model 1.4.0 rules).

        ``regions`` "calibrated" keeps the regions the calibration sets' rule shows (by region p-value, or every
        region of a flagged scan); "all" keeps every region above the voxel threshold. A user ``--threshold``
        means "all" (the region calibration holds at the calibrated voxel threshold only), and its regions get no
        p-values. ``region_peak`` is the largest region peak score at the calibrated voxel threshold. With
        ``decision`` (:mod:`.score.scan_decision`) the subject fields come from the decision scorer's map and sets.
        """
        sets = self.calibration_sets(name)
        mode = self.options.regions or ("all" if user_threshold else "calibrated")
        if sets is None:
            self._note(NO_SETS_NOTE.format(model=f"{self.model.name} {self.model.version}", scorer=name))
            labels = (ids > 0).astype(np.uint8)
            return labels, {"kept": components, "subject_p_value": None, "alpha": None, "regions": "all"}
        alpha = self.options.alpha
        decides = decision.scorer if decision else name
        decision_sets = self.calibration_sets(decides) if decision else sets
        matched, everyone = None, decision_sets
        if self.options.age is not None:
            try:
                label = f"{self.model.name} {self.model.version} ({name})"
                sets, matched, outside = calibration_for_age(sets, float(self.options.age), label)
                decision_sets = sets
                if decision:
                    label = f"{self.model.name} {self.model.version} ({decides})"
                    decision_sets, matched, outside = calibration_for_age(decision_sets, float(self.options.age), label)
            except ValueError as error:
                raise InputError(f"--age: {error}") from None
            self._note(outside)
        self._note(decision_sets.smallest_p_note(alpha))
        score = map_statistic(decision_sets.map_statistic, decision.raw if decision else raw, mask)
        peak = decision.region_peak if decision else region_peak
        fields: dict[str, Any] = {"subject_score": score, **decision_sets.subject(score, alpha, peak)}
        if matched:  # the not-a-brain check (subject score far above its threshold) compares with every scan
            fields["subject_score_threshold"] = everyone.thresholds(alpha)["subject_score_threshold"]
        scored = components if user_threshold else sets.regions(components, alpha)
        kept = sets.shown(scored, fields["subject_flagged"]) if mode == "calibrated" else scored
        labels = np.isin(ids, [c["id"] for c in kept]).astype(np.uint8)
        dropped = [c for c in scored if c not in kept]
        for number, component in enumerate(kept, start=1):
            component["id"] = number
        if decision:  # regions are the shown map's: their p-value threshold is its sets'
            fields["subject_decision"] = {
                "scorer": decides,
                "shown_scorer": name,
                "why": describe_decision(decision, name),
                "region_statistic_threshold": finite_number(decision_threshold(sets.region_max, alpha)),
            }
        fields.update(
            kept=kept,
            alpha=alpha,
            regions=mode,
            conformal=decision_sets.describe(alpha, mode, matched["age_band"] if matched else None),
            age_matching=matched,
            regions_not_kept=[{k: v for k, v in c.items() if k != "id"} for c in dropped],
        )
        return labels, fields

    def _note(self, note: str | None) -> None:
        """Add a note for the user once (detectors are reused over many scans)."""
        if note and note not in self.messages:
            self.messages.append(note)
