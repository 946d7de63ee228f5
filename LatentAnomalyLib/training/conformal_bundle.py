"""Write a bundle's conformal calibration sets from cross-fit records (see :mod:`.crossfit` and :mod:`..score.conformal`).

Run by ``python -m LatentAnomalyLib.cli.calibrate bundle --out DIR`` (options ``--config``, ``--model``, ``--work``).

:func:`write` makes a format-2 bundle (see :mod:`..bundle.migrate`; a format-1 ``model_dir`` is upgraded): every file of
``model_dir`` copied unchanged except ``config.json`` (new version and description), the cross-fitted scorer's
file ``scorers/<name>.json`` (a ``conformal`` entry in its ``calibration``, with the ``settings`` used) and
``metrics.json`` (cross-fit summary), and adds ``calibration_sets.safetensors``: per scorer the healthy subject
scores and per-scan region maxima (what p-values use) and every healthy region (scan index, volume, peak, mean
score; for inspection), keeping the sets of other scorers. The statistics come from ``settings`` (the configuration's
``conformal`` block). Given the scans' ages, each scan's age (NaN when unknown) and the age bands' edges are stored
too, for age-matched p-values (:mod:`..score.age_bands`). A new manifest lists every file's SHA256.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..bundle.contents import read, rewrite
from ..bundle.format import Bundle
from ..score.age_bands import AGE_CUTS
from ..score.conformal import SUBJECT_MAP_PART, CalibrationSets, region_statistic

SETS_FILE = "calibration_sets.safetensors"


@dataclass(frozen=True)
class SetsOrigin:
    """Where a scorer's calibration scans come from: the sets' ``description`` and ``source`` (a few words every door
    shows beside a p-value, e.g. "IXI"), changes to the scorer's calibration (a site's voxel threshold), and the
    key of ``metrics.json`` that records the run."""

    description: str
    source: str
    calibration_updates: dict[str, Any] = field(default_factory=dict)
    metrics_key: str = "crossfit"


def calibration_arrays(records: dict[str, Any], subject: str, region: str) -> dict[str, np.ndarray]:
    """The arrays one scorer's p-values need (float64; a few kB), keyed ``<scorer>.<name>``."""
    name, threshold = records["scorer"], float(records["voxel_threshold"])
    rows = records["records"]
    region_rows = [(i, g) for i, r in enumerate(rows) for g in r["regions"]]
    arrays = {
        "subject_scores": np.array([r["subject"][SUBJECT_MAP_PART[subject]] for r in rows], dtype=np.float64),
        "region_max": np.array(
            [max([region_statistic(g, region, threshold) for g in r["regions"]], default=0.0) for r in rows],
            dtype=np.float64,
        ),
        "region_scan": np.array([i for i, _ in region_rows], dtype=np.int32),
        "region_volume_ml": np.array([g["volume_ml"] for _, g in region_rows], dtype=np.float32),
        "region_peak": np.array([g["peak_score"] for _, g in region_rows], dtype=np.float32),
        "region_mean": np.array([g["mean_score"] for _, g in region_rows], dtype=np.float32),
    }
    return {f"{name}.{k}": v for k, v in arrays.items()}


def write(
    model_dir: Path,
    records: dict[str, Any],
    settings: dict[str, Any],
    version: str,
    out: Path,
    description: str | None = None,
    ages: dict[str, float] | None = None,
    sets: SetsOrigin | None = None,
) -> Path:
    """A new bundle at ``out`` (may be ``model_dir`` itself: written aside, then swapped in); ``ages`` (years by case
    id) adds the calibration scans' ages and the age bands of ``settings["age_cuts"]`` (default :data:`AGE_CUTS`);
    ``sets`` says where the calibration scans come from (default: the IXI cross-fit of ``records``)."""
    bundle = Bundle.load(model_dir)
    name = records["scorer"]
    subject, region = settings["subject_statistic"], settings["region_statistic"]
    CalibrationSets(np.zeros(1), np.zeros(1), region, subject, "", 0.0, settings.get("regions_shown", "p_value"))  # checks
    rows = records["records"]
    n_train = sum(r["part"] == "train" for r in rows)
    sets = sets or SetsOrigin(
        f"{records['folds']}-fold cross-fit over {len(rows)} healthy IXI scans ({n_train} train + "
        f"{len(rows) - n_train} validation; Hammersmith Hospital 3T; the test split never used): the scorer's "
        "statistics fitted on the other folds, the encoder unchanged",
        "IXI",
    )
    contents = read(bundle)
    config = contents.config
    config["version"] = version
    config["description"] = description or config.get("description", "")
    contents.scorers[name].setdefault("calibration", {})["conformal"] = {
        "arrays": SETS_FILE,
        "prefix": name,
        "subject_statistic": subject,
        "subject_normalised": SUBJECT_MAP_PART[subject] != "raw",
        "region_statistic": region,
        "regions_shown": settings.get("regions_shown", "p_value"),
        "default_alpha": settings.get("alpha", 0.05),
        "n_scans": len(rows),
        "description": sets.description,
        "source": sets.source,
        "case_ids": [r["case_id"] for r in rows],
        "settings": dict(settings),
    }
    scan_ages = np.array([(ages or {}).get(r["case_id"], np.nan) for r in rows], dtype=np.float64)
    if ages and np.isfinite(scan_ages).any():
        entry = contents.scorers[name]["calibration"]["conformal"]
        entry["age_cuts"] = [float(c) for c in settings.get("age_cuts", AGE_CUTS)]
        entry["n_scans_with_age"] = int(np.isfinite(scan_ages).sum())
    contents.scorers[name]["calibration"].update(sets.calibration_updates)
    metrics = bundle.json("metrics.json") if bundle.has("metrics.json") else {}
    metrics[sets.metrics_key] = {
        "scorer": name,
        "folds": records.get("folds"),
        "seed": records.get("seed"),
        "n_scans": len(rows),
        "healthy_regions_per_scan_median": float(np.median([len(r["regions"]) for r in rows])),
        "healthy_flagged_ml_median": float(np.median([sum(g["volume_ml"] for g in r["regions"]) for r in rows])),
    }
    kept = bundle.arrays(SETS_FILE) if bundle.has(SETS_FILE) else {}  # other scorers' sets stay
    arrays = {k: v for k, v in kept.items() if not k.startswith(f"{name}.")}
    new = calibration_arrays(records, subject, region)
    if "age_cuts" in contents.scorers[name]["calibration"]["conformal"]:
        new[f"{name}.ages"] = scan_ages
    return rewrite(bundle, contents, out, version, json_files={"metrics.json": metrics}, arrays={SETS_FILE: {**arrays, **new}})

