"""The fields of a scan's summary.json that do not depend on its calibration sets (the pipeline adds those)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import SimpleITK as sitk

from .. import __version__
from ..preprocess.chain import Preprocessed
from ..score.subject import subject_score

if TYPE_CHECKING:
    from ..pipeline import Detector


def detection_summary(
    detector: Detector,
    pre: Preprocessed,
    raw_scores: np.ndarray,
    heatmap: sitk.Image,
    labels: np.ndarray,
    components: list[dict[str, Any]],
    threshold: float,
    timings: dict[str, float],
    name: str,
    user_threshold: bool,
) -> dict[str, Any]:
    """summary.json's fields of one scan and scorer, before the conformal fields (the pipeline adds them)."""
    voxel_ml = float(np.prod(heatmap.GetSpacing())) / 1000.0
    brain_ml = float(pre.native_mask.sum()) * voxel_ml
    flagged_ml = float((labels > 0).sum()) * voxel_ml
    # before post-processing (score/postprocess.py); a combined scorer's map is its parts' post-processed sum
    score = subject_score(raw_scores, pre.mask)
    calibration = detector.model.calibration["scorers"][name]
    subject = calibration["subject"]
    healthy = np.asarray(subject["healthy_scores"], dtype=float)
    return {
        "model": {
            "name": detector.model.name,
            "version": detector.model.version,
            "scorer": name,
        },
        "library_version": __version__,
        "device": detector.device,
        "skull_stripped_input": pre.skull_stripped,
        "subject_score": score,
        "subject_threshold": float(subject["threshold"]),
        "subject_flagged": bool(score > float(subject["threshold"])),
        "subject_healthy_percentile": float((healthy < score).mean() * 100.0) if healthy.size else None,
        "voxel_threshold": threshold,
        "voxel_threshold_source": "user" if user_threshold else calibration.get("voxel_threshold_rule", "calibrated"),
        "brain_volume_ml": brain_ml,
        "flagged_volume_ml": flagged_ml,
        "flagged_fraction_of_brain": flagged_ml / brain_ml if brain_ml else 0.0,
        "n_components": len(components),
        "components": components,
        "registration": {k: float(v) for k, v in pre.info.items()},
        "timings_s": {k: round(v, 3) for k, v in timings.items()},
        "messages": list(detector.messages),
    }
