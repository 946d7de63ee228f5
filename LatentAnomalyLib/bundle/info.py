"""`latent-anomaly info`: what a bundle holds, how it was trained and calibrated, and whether it is intact.

A scorer with conformal calibration sets (model 1.5.0, see ``docs/calibration.md``) flags a scan by its p-value;
its line states the sets (scans, subject and region statistics, default alpha) and the score thresholds that are
equivalent to alpha 0.05, not the 1.4.0 subject threshold its file still stores. Both bundle formats are read
(through :func:`.contents.read`). No torch here.
"""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from ..score.age_bands import band_index, band_label
from ..score.conformal import DEFAULT_ALPHA, SUBJECT_DESCRIPTIONS, decision_threshold, load_sets, p_value_factor
from .contents import read as read_contents
from .format import Bundle, default_model_path
from .migrate import calibration_view


def _finite(value: float) -> float | None:
    """A threshold no value can pass (alpha under 1 / (n + 1)) is None, as in summary.json."""
    return value if math.isfinite(value) else None


def conformal_info(bundle: Bundle, calibration: dict[str, Any], scorer: str) -> dict[str, Any] | None:
    """What the scorer's calibration sets are and the thresholds equivalent to alpha 0.05, or None without sets;
    ``calibration`` is the ``{"scorers": {name: ...}}`` view of :func:`.migrate.calibration_view`."""
    entry = calibration["scorers"][scorer].get("conformal")
    sets = load_sets(SimpleNamespace(calibration=calibration, bundle=bundle), scorer) if entry else None
    if sets is None:
        return None
    return {
        "n_scans": sets.n,
        "source": sets.label,
        "smallest_p_value": p_value_factor(sets.subject_statistic) / (sets.n + 1),
        "subject_statistic": SUBJECT_DESCRIPTIONS[sets.subject_statistic],
        "region_statistic": sets.region_statistic,
        "regions_shown": sets.regions_shown,
        "default_alpha": float(entry.get("default_alpha", DEFAULT_ALPHA)),
        "description": sets.description,
        "alpha": DEFAULT_ALPHA,
        **sets.thresholds(DEFAULT_ALPHA),
        "region_statistic_threshold": _finite(decision_threshold(sets.region_max, DEFAULT_ALPHA)),
        "age_bands": _age_bands(sets),
    }


def _age_bands(sets: Any) -> dict[str, int] | None:
    """Calibration scans per age band (``--age``), or None when the sets store no ages."""
    if sets.ages is None:
        return None
    known = sets.ages[np.isfinite(sets.ages)]
    index = [band_index(a, sets.age_cuts) for a in known]
    return {band_label(i, sets.age_cuts): index.count(i) for i in range(len(sets.age_cuts) + 1)}


def _flag_conditions(c: dict[str, Any], value: Any) -> list[str]:
    """When a scan is flagged at the stated alpha: its subject score and/or its largest region peak above a value."""
    out = []
    if c["subject_threshold"] is not None:
        out.append(f"the subject score is above {value(c['subject_threshold'])}")
    if "subject_region_peak_threshold" in c:
        out.append(f"the largest region peak is above {value(c['subject_region_peak_threshold'])}")
    return out or ["never"]


def _threshold_lines(name: str, t: dict[str, Any]) -> list[str]:
    head = f"    {name}: voxel threshold {t['voxel']:.3f} ({t['rule']})"
    c = t.get("conformal")
    if c is None:
        return [f"{head}; subject threshold {t['subject']:.3f}"]

    def value(v: float | None) -> str:
        return "none" if v is None else f"{v:.3f}"

    return [
        f"{head}; conformal calibration sets: {c['n_scans']} healthy scans, default alpha {c['default_alpha']:g}",
        f"      subject statistic: {c['subject_statistic']}; region statistic: {c['region_statistic']}",
        f"      at alpha {c['alpha']:g}: flagged when "
        + " or ".join(_flag_conditions(c, value))
        + f" (p <= alpha), region {c['region_statistic']} threshold "
        f"{value(c['region_statistic_threshold'])}; label map: "
        + ("every region of a flagged scan" if c["regions_shown"] == "flagged_scan" else "regions with p <= alpha"),
        f"      calibration: {c['source']}; smallest p-value {c['smallest_p_value']:.4f}",
    ] + (
        ["      with --age: against the calibration scans of the age band ("
         + ", ".join(f"{band}: {n} scans" for band, n in c["age_bands"].items()) + ")"]
        if c.get("age_bands")
        else []
    )


def describe(path: str | Path | None = None) -> dict[str, Any]:
    bundle = Bundle.load(path or default_model_path())  # verifies every checksum
    contents = read_contents(bundle)
    config = contents.config
    calibration = calibration_view(contents.scorers)
    metrics = bundle.json("metrics.json") if bundle.has("metrics.json") else {}
    size_mb = sum((bundle.folder / f).stat().st_size for f in bundle.manifest["files"]) / 1e6
    info: dict[str, Any] = {
        "path": str(bundle.folder),
        "name": bundle.manifest["model_name"],
        "version": bundle.manifest["model_version"],
        "format_version": bundle.manifest["format_version"],
        "library_version": bundle.manifest["library_version"],
        "created": bundle.manifest["created"],
        "checksums": "verified",
        "size_mb": round(size_mb, 2),
        "modality": config.get("modality"),
        "encoder": config["encoder"],
        "scorers": list(config["scorers"]),
        "default_scorer": config["default_scorer"],
        "decision_scorers": dict(config.get("decision_scorers", {})),
        "thresholds": {
            name: {
                "voxel": c["voxel_threshold"],
                "subject": c["subject"]["threshold"],
                "rule": c.get("voxel_threshold_rule", ""),
            }
            for name, c in calibration["scorers"].items()
        },
        "training_data": {k: v for k, v in config.get("training_data", {}).items() if not k.endswith("subjects")},
        "metrics": metrics,
    }
    for name, t in info["thresholds"].items():  # with calibration sets, the subject threshold detect uses at 0.05
        conformal = conformal_info(bundle, calibration, name)
        if conformal is not None:
            t.update(subject=conformal["subject_threshold"], subject_without_sets=t["subject"], conformal=conformal)
    lines = [
        f"{info['name']} {info['version']}  ({info['path']}, {info['size_mb']} MB, checksums verified)",
        f"  format {info['format_version']}, written by latent-anomaly {info['library_version']} on {info['created']}",
        f"  modality {info['modality']}; encoder {info['encoder']['family']} (latent {info['encoder']['latent_channels']} channels, stride {info['encoder']['stride']})",
        f"  trained on {info['training_data'].get('dataset', '?')} ({info['training_data'].get('split_file', '?')})",
        f"  scorers: {', '.join(info['scorers'])} (default {info['default_scorer']})",
    ]
    for shown, decides in info["decision_scorers"].items():
        lines.append(f"  {shown}: the scan's p-value and flag come from {decides}'s map and sets; {shown}'s map is shown")
    for name, t in info["thresholds"].items():
        lines += _threshold_lines(name, t)
    info["text"] = "\n".join(lines)
    return info
