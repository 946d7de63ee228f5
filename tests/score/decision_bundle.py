"""A copy of the bundled model whose default scorer's scan decision comes from another scorer (``decision_scorers``),
with calibration sets chosen by the test: what the decision tests need without cross-fitting anything."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from LatentAnomalyLib.bundle import contents as bundle_contents
from LatentAnomalyLib.bundle.format import Bundle
from LatentAnomalyLib.score.latent_atlas_sum import IDENTITY_POSTPROCESS
from LatentAnomalyLib.score.location_normalised import LocationNormalisedScorer
from LatentAnomalyLib.training.conformal_bundle import write
from LatentAnomalyLib.training.crossfit import SUBJECT_CANDIDATES

DECIDES = "decides"
SHAPE = (80, 96, 80)  # the bundled model's grid


def decision_bundle(model_dir: Path, out: Path, statistic: float, n_scans: int = 40) -> Path:
    """``model_dir`` plus a scorer ``decides`` (its default map plus half the one-sided asymmetry, healthy statistics
    0 and 1 everywhere) that decides for the default scorer, calibrated on ``n_scans`` made-up healthy records whose
    subject statistics and largest region peaks are all ``statistic``: a scan whose map statistic or largest region
    peak exceeds ``statistic`` gets p = 2 / (n_scans + 1) (``combined``), one below both gets p = 1."""
    bundle = Bundle.load(model_dir)
    contents = bundle_contents.read(bundle)
    shown = contents.config["default_scorer"]
    zeros, ones = np.zeros(SHAPE, np.float32), np.ones(SHAPE, np.float32)
    scorer = LocationNormalisedScorer(shown, zeros, ones, {"test": True}, (zeros, ones), 0.5, 2)
    arrays, meta = scorer.state()
    calibration = contents.scorers[shown]["calibration"]
    entry = {k: calibration[k] for k in ("voxel_fpr", "subject_fpr", "min_component_ml", "subject")}
    entry.update(voxel_threshold=3.0, voxel_threshold_rule="made up for a test")
    contents.scorers[DECIDES] = {**meta, "postprocess": dict(IDENTITY_POSTPROCESS), "calibration": entry}
    contents.config["scorers"][DECIDES] = {"meta": f"scorers/{DECIDES}.json", "arrays": f"scorers/{DECIDES}.safetensors"}
    contents.config["decision_scorers"] = {shown: DECIDES}
    staged = bundle_contents.rewrite(
        bundle, contents, out.parent / f"{out.name}-staged", bundle.manifest["model_version"],
        arrays={f"scorers/{DECIDES}.safetensors": arrays},
    )  # fmt: skip
    records = {
        "scorer": DECIDES,
        "voxel_threshold": 3.0,
        "folds": 5,
        "seed": 0,
        "records": [
            {"case_id": f"h{i}", "part": "train", "subject": dict.fromkeys(SUBJECT_CANDIDATES, statistic),
             "regions": [{"volume_ml": 1.0, "peak_score": statistic, "mean_score": statistic}],
             "brain_volume_ml": 1200.0}
            for i in range(n_scans)
        ],
    }  # fmt: skip
    settings = {**calibration["conformal"]["settings"], "subject_statistic": "combined", "regions_shown": "flagged_scan"}
    return write(staged, records, settings, bundle.manifest["model_version"], out)
