"""Read the CLI's ``summary.json`` and say in a few lines what it found, for the module's text box.

The wording keeps two thresholds apart because users confuse them: the *subject* score is compared
with the subject threshold (is this scan unusual as a whole?), the *voxel* threshold decides which
voxels of the heatmap are flagged in the label map. With conformal calibration (models from 1.5.0) the subject
decision is its p-value against alpha: of the subject score in 1.5.x (``subject_threshold`` is then the
equivalent score threshold, null when alpha is under 1 / (n + 1)), of the largest region peak from 1.6.0
(``subject_region_peak`` against ``subject_region_peak_threshold``), of either one from 1.9.0 (``combined``: each
at alpha / 2, none when alpha is under 2 / (n + 1)); regions carry p-values at the calibrated voxel threshold only.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from LatentAnomalyLib.outputs.decision_text import (
    age_matching_text,
    calibration_text,
    flag_conditions_text,
    shows_flagged_scan_regions,
)
from LatentAnomalyLib.score.conformal import finite_number

from .rethreshold import SOURCE_SLICER

REQUIRED_KEYS = (
    "model",
    "subject_score",
    "subject_threshold",
    "voxel_threshold",
    "flagged_volume_ml",
    "n_components",
    "components",
)
DISCLAIMER = "Research software: not for diagnosis."


def load_summary(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The parsed summary; ``ValueError`` (with the path) if it is missing, not JSON or lacks required keys."""
    path = Path(path)
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{path}: no summary was written") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: cannot read the summary ({error})") from None
    if not isinstance(summary, dict):
        raise ValueError(f"{path}: the summary is not a JSON object")
    missing = [key for key in REQUIRED_KEYS if key not in summary]
    if missing:
        raise ValueError(f"{path}: the summary lacks {', '.join(missing)}")
    return summary


def _number(value: Any, digits: int = 2) -> str:
    try:
        return f"{float(value):.{digits}f}"
    except (TypeError, ValueError):
        return "?"


def _ras(point: Any) -> str:
    try:
        r, a, s = (float(v) for v in point)
    except (TypeError, ValueError):
        return "(?)"
    return f"({r:.1f}, {a:.1f}, {s:.1f})"




def _conformal_subject_lines(summary: dict[str, Any], flagged: bool | None) -> list[str]:
    """The conformal subject decision: p-value against alpha, and the equivalent threshold of what decides it
    (the largest region peak from model 1.6.0, with the subject score from 1.9.0, the subject score before; none
    when alpha is under the smallest p-value)."""
    p, alpha = finite_number(summary.get("subject_p_value")), finite_number(summary.get("alpha"))
    verdict = {True: "FLAGGED", False: "not flagged", None: "not assessed"}[flagged]
    relation = "" if alpha is None else (" <=" if p <= alpha else " >")
    threshold = finite_number(summary.get("subject_threshold"))
    lines = [f"Subject p-value {p:.3g}{relation} alpha {'?' if alpha is None else f'{alpha:g}'}: {verdict}"]
    if (age := age_matching_text(summary)) is not None:
        lines.append(age[0].upper() + age[1:])
    if (source := calibration_text(summary)) is not None:
        lines.append(source[0].upper() + source[1:])
    peak = flag_conditions_text(summary)
    if peak is not None:  # model 1.6.0 and later: the largest region peak decides; the score is for reading
        return [*lines, peak[0].upper() + peak[1:], f"Subject score {_number(summary.get('subject_score'))}"]
    return [
        *lines,
        f"Subject score {_number(summary.get('subject_score'))} "
        + ("(no score threshold at this alpha)" if threshold is None else f"(score threshold {threshold:.2f})"),
    ]


def _region_p_value_lines(summary: dict[str, Any]) -> list[str]:
    """What the regions' p-values mean for this label map (nothing for a model without calibration)."""
    if finite_number(summary.get("alpha")) is None:
        return []
    if summary.get("voxel_threshold_source") == SOURCE_SLICER:
        return ["Region p-values: n/a at this threshold (the region calibration holds at the calibrated voxel "
                "threshold only; move back to it to see them)"]  # fmt: skip
    if summary.get("voxel_threshold_source") == "user":
        return ["Region p-values: none (a user voxel threshold; the calibration holds at the calibrated one only)"]
    dropped = len(summary.get("regions_not_kept") or [])
    if summary.get("regions") == "calibrated" and shows_flagged_scan_regions(summary):
        return [f"Regions: every region of a flagged scan, none otherwise ({dropped} above the voxel threshold not "
                "kept)"]  # fmt: skip
    if summary.get("regions") == "calibrated":
        return [f"Regions kept when their p-value <= alpha ({dropped} above the voxel threshold not kept)"]
    return ["Regions: every region above the voxel threshold, each with its p-value"]


def format_summary(summary: dict[str, Any], largest: int = 3) -> str:
    """A short plain-text report: model, subject verdict, voxel threshold, flagged volume, largest regions."""
    model = summary.get("model") or {}
    lines = [
        f"Model: {model.get('name', '?')} {model.get('version', '')}".rstrip()
        + (f" (scorer {model['scorer']})" if model.get("scorer") else "")
    ]
    flagged = summary.get("subject_flagged")
    if flagged is None:
        try:
            flagged = float(summary["subject_score"]) > float(summary["subject_threshold"])
        except (KeyError, TypeError, ValueError):
            flagged = None
    verdict = {True: "ABOVE the healthy range", False: "within the healthy range", None: "not assessed"}[flagged]
    if finite_number(summary.get("subject_p_value")) is None:  # a model without calibration sets: 1.4.0 thresholds
        lines.append(
            f"Subject score {_number(summary.get('subject_score'))} vs threshold "
            f"{_number(summary.get('subject_threshold'))}: {verdict}"
        )
    else:
        lines += _conformal_subject_lines(summary, flagged)
    source = summary.get("voxel_threshold_source")
    lines.append(f"Voxel threshold {_number(summary.get('voxel_threshold'), 3)}" + (f" ({source})" if source else ""))
    lines += _region_p_value_lines(summary)
    fraction = summary.get("flagged_fraction_of_brain")
    percent = f" ({100 * float(fraction):.2f}% of brain)" if isinstance(fraction, int | float) else ""
    count = int(summary.get("n_components") or 0)
    lines.append(
        f"Flagged volume {_number(summary.get('flagged_volume_ml'), 1)} mL{percent} "
        f"in {count} region{'s' if count != 1 else ''}"
    )
    components = sorted(summary.get("components") or [], key=lambda c: -float(c.get("volume_ml", 0.0)))
    if components:
        lines.append(f"Largest region{'s' if min(largest, len(components)) > 1 else ''}:")
        for rank, component in enumerate(components[:largest], start=1):
            p = finite_number(component.get("p_value"))
            lines.append(
                f"  {rank}. {_number(component.get('volume_ml'))} mL at RAS "
                f"{_ras(component.get('centroid_ras_mm'))} mm, peak {_number(component.get('peak_score'))}"
                + ("" if p is None else f", p {p:.3g}")
            )
    for message in summary.get("messages") or []:
        lines.append(f"Note: {message}")
    lines.append(DISCLAIMER)
    return "\n".join(lines)


def format_model_info(info: dict[str, Any]) -> str:
    """What ``info --json`` says about a bundle: name, version, scorers and their calibrated thresholds (for a
    scorer with conformal calibration sets, the subject score threshold equivalent to alpha 0.05)."""
    lines = [f"Model: {info.get('name', '?')} {info.get('version', '')}".rstrip()]
    default = info.get("default_scorer")
    scorers = list(info.get("scorers") or [])
    if scorers:
        lines.append("Scorers: " + ", ".join(f"{s} (default)" if s == default else s for s in scorers))
    for name, thresholds in (info.get("thresholds") or {}).items():
        rule = thresholds.get("rule")
        conformal = thresholds.get("conformal")
        subject = f", subject threshold {_number(thresholds.get('subject'), 3)}"
        if isinstance(conformal, dict):  # models from 1.5.0: flagged by p-value; the threshold is alpha 0.05's
            peak = conformal.get("subject_region_peak_threshold")
            score = conformal.get("subject_threshold")
            if peak is not None and score is not None:  # model 1.9.0's combined rule: either one flags
                decided_by = (
                    f"flagged when the subject score is above {_number(score, 3)} or the largest region peak is "
                    f"above {_number(peak, 3)}"
                )
            elif peak is not None:  # models 1.6.0 to 1.8.0: the largest region peak
                decided_by = f"flagged when the largest region peak is above {_number(peak, 3)}"
            else:
                decided_by = f"subject score threshold {_number(score, 3)}"
            subject = (
                f", conformal calibration ({conformal.get('n_scans', '?')} healthy scans): {decided_by} at alpha "
                f"{conformal.get('alpha', '?')}"
            )
        lines.append(
            f"  {name}: voxel threshold {_number(thresholds.get('voxel'), 3)}" + (f" ({rule})" if rule else "") + subject
        )
    return "\n".join(lines)
