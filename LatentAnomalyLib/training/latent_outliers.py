"""Outlier removal that removes: lesion scans in a "healthy" training set found by the product's own cross-fitted
latent statistic, before the encoder is trained (the ``outliers`` stage of `latent-anomaly train`).

Why not the reconstruction loss (:mod:`.outliers`, Behrendt et al. 2022): after an epoch the injected BraTS T1 scans'
whole-scan losses were 0.97-1.03x the mean (``docs/encoders.md``): a whole-scan loss averages a lesion away, and a
network that trains on the lesions learns to reconstruct them. What this product scores with instead is the
latent statistic: the scorer's distance of each latent cell from the healthy cells at that position, whose largest
region peak decides a scan's p-value.

The criterion: every training and validation scan goes through the reference model's detection (the bundled model
unless ``--reference-model``: an encoder trained on clean healthy scans, with its preprocessing), its default scorer
cross-fitted over those scans in k folds (:func:`.crossfit.crossfit_scans`: each scan scored by statistics fitted on
the others, so a lesion scan cannot explain itself away); the statistic is the scan's largest region peak. A scan is
removed when its robust z-score ``0.6745 (x - median) / MAD`` exceeds ``z`` (3.5, Iglewicz and Hoaglin's rule for
outliers, fixed before any measurement): median and MAD move little with a minority of outliers, unlike mean and SD.

When: before the encoder stage, once. The reference encoder does not depend on the impure set (an encoder trained
on it would learn the lesions, which is what made the loss criterion fail), the decision costs one preprocessing and
encoding pass (seconds per scan) instead of a restart of training, and a removed scan reaches neither the encoder,
nor the scorers, thresholds or calibration sets. The cost: it needs a reference model of the same sequence.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_Z = 3.5
OUTLIERS_FILE = "outliers.json"


def robust_z(values: np.ndarray) -> np.ndarray:
    """``0.6745 (x - median) / MAD`` (the modified z-score); zeros when the MAD is 0 (no spread to judge by)."""
    x = np.asarray(values, dtype=np.float64)
    median = float(np.median(x))
    mad = float(np.median(np.abs(x - median)))
    if mad == 0.0:
        return np.zeros_like(x)
    return 0.6745 * (x - median) / mad


def decide(statistics: dict[str, float], z: float = DEFAULT_Z) -> dict[str, Any]:
    """Which scans to remove: those whose statistic's robust z-score is above ``z`` (high side only: a scan is
    anomalous by scoring high). Returns the decision with every scan's statistic and z-score (JSON-ready)."""
    ids = sorted(statistics)
    values = np.array([statistics[i] for i in ids], dtype=np.float64)
    scores = robust_z(values)
    return {
        "rule": f"robust z-score 0.6745 (x - median) / MAD above {z:g}",
        "z": z,
        "median": float(np.median(values)),
        "mad": float(np.median(np.abs(values - np.median(values)))),
        "removed": [i for i, s in zip(ids, scores) if s > z],
        "statistic": {i: float(v) for i, v in zip(ids, values)},
        "robust_z": {i: float(s) for i, s in zip(ids, scores)},
    }


def largest_region_peaks(records: dict[str, Any]) -> dict[str, float]:
    """Each cross-fitted scan's largest region peak score (0 without a region), by case id."""
    return {r["case_id"]: max((g["peak_score"] for g in r["regions"]), default=0.0) for r in records["records"]}


def settings(raw: dict[str, Any]) -> dict[str, Any] | None:
    """The configuration's ``outlier_removal`` block (``{"criterion": "latent", "z": 3.5, "folds": 5}``), or None
    when the latent criterion is off."""
    block = raw.get("outlier_removal")
    if not block:
        return None
    if block.get("criterion", "latent") != "latent":
        raise ValueError(f"outlier_removal.criterion must be 'latent', got {block.get('criterion')!r}")
    return {"criterion": "latent", "z": float(block.get("z", DEFAULT_Z)), "folds": int(block.get("folds", 5))}


def removed_ids(workdir: Path) -> set[str]:
    """The scans the outliers stage removed (none before it ran)."""
    path = Path(workdir) / OUTLIERS_FILE
    return set(json.loads(path.read_text())["removed"]) if path.is_file() else set()


def stage_outliers(run: Any, force: bool) -> None:
    """Decide once, before the encoder, which training and validation scans are removed (``outliers.json``)."""
    from ..bundle.model import Model
    from ..pipeline import DetectOptions, Detector
    from .crossfit import crossfit_scans
    from .scan_cache import cached

    options = settings(run.config.raw)
    target = run.path(OUTLIERS_FILE)
    if options is None:
        run.log("outlier removal (latent criterion) off")
        return
    if target.is_file() and not force:
        run.log(f"{target} exists; skipping")
        return
    reference = run.source.reference() if run.source is not None else Model.load(None)
    name = reference.default_scorer
    detector = Detector(reference, DetectOptions(scorer=name, device="cpu"))
    work = run.path("outliers")
    scans = []
    for part in ("train", "val"):
        for case in run.cases(part, every=True):
            scans.append((part, cached(detector, work / "scans", case.case_id, case.images[run.sequence.lower()])))
    k = max(2, min(options["folds"], len(scans)))
    records = crossfit_scans(reference, name, scans, work, k, run.config.seed, run.log)
    decision = decide(largest_region_peaks(records), options["z"])
    decision.update(criterion="largest region peak, cross-fitted", reference_model=f"{reference.name} "
                    f"{reference.version} ({name})", folds=k)
    target.write_text(json.dumps(decision, indent=1) + "\n")
    run.log(f"outlier removal: {len(decision['removed'])} of {len(scans)} scans removed "
            f"({', '.join(decision['removed']) or 'none'}; {decision['rule']})")
