"""Add a combined scorer (:mod:`..score.latent_atlas_sum`) to a trained bundle without retraining anything.

    python -m LatentAnomalyLib.cli.calibrate combine --out DIR [--config FILE] [--model DIR] [--cache DIR]

A combined scorer has no arrays: it sums the bundle's own part scorers' post-processed maps. What it needs is
what `latent-anomaly train` gives every scorer (``training/scorer_stage.py``), computed the same way: its
calibration entry (voxel threshold at the configuration's voxel FPR and subject threshold, on the healthy
IXI validation scans) and its synthetic-lesion validation figures (the training run's lesions painted into the
same scans), both with the parts fitted on the train scans as shipped. The validation scans come from the
benchmark scan cache (the bundle's own preprocessing and encoding, :mod:`.scan_cache`). Every other file is
copied unchanged; ``config.json`` gains the scorer and the configuration's default scorer, version and
description; ``metrics.json`` gains the scorer's validation figures. The conformal sets are a later step
(``crossfit`` then ``bundle``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..bundle.contents import read, rewrite
from ..bundle.model import Model
from ..evaluation import datasets
from ..pipeline import DetectOptions, Detector
from ..score.latent_atlas_sum import IDENTITY_POSTPROCESS
from ..score.postprocess_config import PostprocessOverrides
from ..score.registry import COMBINED_SCORERS, scorer_class
from .calibrate import build_synthetic_set, calibrate_scorer, synthetic_validation
from .config import TrainConfig
from .scan_cache import cached


def combined_specs(config: TrainConfig) -> list[Any]:
    """The configuration's combined-scorer entries (``TrainConfig`` has checked their post-processing and order)."""
    return [s for s in config.scorers if s.name in COMBINED_SCORERS]


def write(model_dir: Path, config: TrainConfig, cache: Path, out: Path, log: Any = print) -> Path:
    """A bundle at ``out`` (may be ``model_dir``) with every combined scorer of ``config`` added and calibrated."""
    model = Model.load(model_dir)
    specs = combined_specs(config)
    if not specs:
        raise ValueError("the configuration lists no combined scorer")
    detector = Detector(model, DetectOptions(device="cpu"))
    val = [cached(detector, cache / "ixi-val", c.case_id, c.images["t1"]).encoded for c in datasets.ixi_cases("val")]
    synthetic = build_synthetic_set(
        val, model.encoder, model.latent_mean, model.latent_std, "cpu", config.seed, reconstruct=False, mirrored=True
    )
    contents = read(model.bundle)
    metrics = model.bundle.json("metrics.json") if model.bundle.has("metrics.json") else {}
    for spec in specs:
        scorer = scorer_class(spec.name)(**spec.params)
        scorer.bind(model.scorers, model.calibration)
        post = PostprocessOverrides.from_dict(IDENTITY_POSTPROCESS)
        entry = {
            "voxel_fpr": config.calibration.voxel_fpr,  # as training writes every scorer's entry
            "subject_fpr": config.calibration.subject_fpr,
            **calibrate_scorer(scorer, val, post, config.calibration),
        }
        check = synthetic_validation(scorer, synthetic, post)
        _, meta = scorer.state()
        contents.scorers[spec.name] = {**meta, "postprocess": entry.pop("postprocess"), "calibration": entry}
        contents.config["scorers"][spec.name] = {"meta": f"scorers/{spec.name}.json"}
        metrics.setdefault("scorers", {})[spec.name] = {
            "synthetic_validation": check,
            "postprocess": dict(IDENTITY_POSTPROCESS),
            "added_by": "python -m LatentAnomalyLib.cli.calibrate combine (parts as shipped, no refit)",
        }
        log(
            f"{spec.name}: voxel threshold {entry['voxel_threshold']:.3f} on {len(val)} validation scans, "
            f"synthetic-lesion AUROC {check['auroc']:.3f} AUPRC {check['auprc']:.3f}"
        )
    contents.config["default_scorer"] = config.default_scorer
    contents.config["version"] = config.version
    contents.config["description"] = config.description
    return rewrite(model.bundle, contents, out, config.version, json_files={"metrics.json": metrics})
