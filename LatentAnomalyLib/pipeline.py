"""Detection: the only place where the stages are chained (CLI, Slicer, tests and benchmarks all call it).

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

from . import __version__
from .components import label_components
from .devices import encode_with_fallback, resolve_device
from .model import Model
from .postprocess import PostprocessConfig, postprocess
from .preprocess import Preprocessed, Preprocessor
from .scorers import EncodedScan

Progress = Callable[[str, float], None]


def _quiet(stage: str, fraction: float) -> None:
    return None


@dataclass
class DetectOptions:
    scorer: str | None = None
    skull: str = "auto"
    device: str = "auto"
    threshold: float | None = None


@dataclass
class DetectionResult:
    heatmap: sitk.Image
    labelmap: sitk.Image
    summary: dict[str, Any]
    preprocessed: Preprocessed
    model_heatmap: np.ndarray
    messages: list[str] = field(default_factory=list)


def subject_score(model_heatmap: np.ndarray, mask: np.ndarray, top_fraction: float = 0.01) -> float:
    """Mean of the highest ``top_fraction`` of brain voxel scores: one number per scan."""
    values = model_heatmap[mask]
    if values.size == 0:
        return 0.0
    k = max(1, int(round(top_fraction * values.size)))
    return float(np.mean(np.partition(values, values.size - k)[-k:]))


class Detector:
    """Run a loaded model on scans; one instance can process many scans."""

    def __init__(self, model: Model, options: DetectOptions | None = None, progress: Progress | None = None):
        self.model = model
        self.options = options or DetectOptions()
        self.progress = progress or _quiet
        self.scorer_name = self.options.scorer or model.default_scorer
        if self.scorer_name not in model.scorers:
            raise ValueError(f"scorer {self.scorer_name!r} is not in model {model.name}; it has: {', '.join(model.scorers)}")
        self.scorer = model.scorers[self.scorer_name]
        self.calibration = model.calibration["scorers"][self.scorer_name]
        self.device, message = resolve_device(self.options.device)
        self.messages = [message] if message else []
        self.preprocessor = Preprocessor(model.preprocess, model.template, model.brainmask_net)

    def encode(self, pre: Preprocessed) -> EncodedScan:
        need_reconstruction = "reconstruction" in self.scorer.needs
        latent, reconstruction, self.device, message = encode_with_fallback(
            self.model.encoder, pre.image, self.device, need_reconstruction
        )
        if message:
            self.messages.append(message)
        return EncodedScan(pre.image, pre.mask, self.model.standardise_latent(latent), reconstruction)

    def detect(self, image: sitk.Image) -> DetectionResult:
        timings: dict[str, float] = {}

        def stage(name: str, fraction: float) -> float:
            self.progress(name, fraction)
            return time.perf_counter()

        t = stage("preprocess", 0.0)
        self.preprocessor.device = self.device
        with torch.inference_mode():
            pre = self.preprocessor.run(image, self.options.skull)
        timings["preprocess"] = time.perf_counter() - t
        timings.update({f"preprocess.{k}": v for k, v in pre.timings.items()})

        t = stage("encode", 0.45)
        encoded = self.encode(pre)
        timings["encode"] = time.perf_counter() - t

        t = stage("score", 0.6)
        raw = self.scorer.score(encoded)
        timings["score"] = time.perf_counter() - t

        t = stage("postprocess", 0.7)
        post_config = PostprocessConfig(**self.calibration.get("postprocess", {}))
        model_heatmap = postprocess(raw, pre.mask, post_config)
        timings["postprocess"] = time.perf_counter() - t

        t = stage("map to scan", 0.8)
        heatmap = pre.to_native(model_heatmap, self.model.preprocess.grid)
        threshold = float(self.options.threshold if self.options.threshold is not None else self.calibration["voxel_threshold"])
        min_ml = float(self.calibration.get("min_component_ml", 0.1))
        labels, components = label_components(sitk.GetArrayFromImage(heatmap), threshold, heatmap, min_ml)
        labelmap = sitk.GetImageFromArray(labels)
        labelmap.CopyInformation(image)
        timings["map_to_scan"] = time.perf_counter() - t
        self.progress("done", 1.0)

        summary = self._summary(pre, model_heatmap, heatmap, labels, components, threshold, timings)
        return DetectionResult(heatmap, labelmap, summary, pre, model_heatmap, list(self.messages))

    def _summary(self, pre: Preprocessed, model_heatmap: np.ndarray, heatmap: sitk.Image, labels: np.ndarray,
                 components: list[dict[str, Any]], threshold: float, timings: dict[str, float]) -> dict[str, Any]:
        voxel_ml = float(np.prod(heatmap.GetSpacing())) / 1000.0
        brain_ml = float(pre.native_mask.sum()) * voxel_ml
        flagged_ml = float((labels > 0).sum()) * voxel_ml
        score = subject_score(model_heatmap, pre.mask)
        subject = self.model.calibration["scorers"][self.scorer_name]["subject"]
        healthy = np.asarray(subject["healthy_scores"], dtype=float)
        return {
            "model": {"name": self.model.name, "version": self.model.version, "scorer": self.scorer_name},
            "library_version": __version__,
            "device": self.device,
            "skull_stripped_input": pre.skull_stripped,
            "subject_score": score,
            "subject_threshold": float(subject["threshold"]),
            "subject_flagged": bool(score > float(subject["threshold"])),
            "subject_healthy_percentile": float((healthy < score).mean() * 100.0) if healthy.size else None,
            "voxel_threshold": threshold,
            "voxel_threshold_source": "user" if self.options.threshold is not None else self.calibration.get("voxel_threshold_rule", "calibrated"),
            "brain_volume_ml": brain_ml,
            "flagged_volume_ml": flagged_ml,
            "flagged_fraction_of_brain": flagged_ml / brain_ml if brain_ml else 0.0,
            "n_components": len(components),
            "components": components,
            "registration": {k: float(v) for k, v in pre.info.items()},
            "timings_s": {k: round(v, 3) for k, v in timings.items()},
            "messages": list(self.messages),
        }
