"""The case summary text and the region list rows of the review page (plain Python, no trame, no Slicer).

Models from 1.5.0 write conformal p-values (see ``docs/calibration.md``): ``subject_p_value`` and ``alpha`` in
``summary.json``, a ``p_value`` per region, and ``subject_threshold`` is ``null`` when alpha is below
1 / (n + 1) (no score reaches it) or, from 1.6.0, when the largest region peak (``subject_region_peak``) decides. Bundles without calibration sets write no p-values (``subject_p_value`` null).
Region p-values hold at the calibrated voxel threshold only: regions recomputed at another threshold have none.
"""

from __future__ import annotations

from typing import Any

from LatentAnomalyLib.outputs.decision_text import (
    age_matching_text,
    calibration_text,
    flag_conditions_text,
    shows_flagged_scan_regions,
)
from LatentAnomalyLib.score.conformal import finite_number

NOT_AVAILABLE = "n/a"
REGION_P_NOTE = (
    "regions at this threshold have no p-value (the region calibration holds at the calibrated voxel threshold only)"
)




def format_p(value: Any) -> str:
    """A p-value as shown (3 significant digits), or "n/a" when there is none."""
    number = finite_number(value)
    return NOT_AVAILABLE if number is None else f"{number:.3g}"


def subject_lines(summary: dict[str, Any]) -> list[str]:
    """The subject decision: score and its threshold (or none at this alpha), p-value, alpha and flag."""
    flag = "flagged" if summary.get("subject_flagged") else "not flagged"
    score = finite_number(summary.get("subject_score"))
    threshold = finite_number(summary.get("subject_threshold"))
    score_text = "?" if score is None else f"{score:.2f}"
    threshold_text = "no score threshold at this alpha" if threshold is None else f"threshold {threshold:.2f}"
    p, alpha = finite_number(summary.get("subject_p_value")), finite_number(summary.get("alpha"))
    if p is None:
        return [f"subject score {score_text} ({threshold_text}; {flag})", "no subject p-value (model without "
                "conformal calibration sets: 1.4.0 thresholds)"]  # fmt: skip
    alpha_text = "?" if alpha is None else f"{alpha:g}"
    relation = "<=" if alpha is not None and p <= alpha else ">"
    peak = flag_conditions_text(summary)
    age = [text] if (text := age_matching_text(summary)) else []
    age += [text] if (text := calibration_text(summary)) else []
    if peak is not None:  # model 1.6.0 and later: the largest region peak decides; the score is for reading
        return [f"subject p-value {p:.3g} (alpha {alpha_text}; p {relation} alpha: {flag})", *age, peak,
                f"subject score {score_text}"]  # fmt: skip
    return [
        f"subject p-value {p:.3g} (alpha {alpha_text}; p {relation} alpha: {flag})",
        *age,
        f"subject score {score_text} ({threshold_text})",
    ]


def region_lines(summary: dict[str, Any]) -> list[str]:
    """Which regions the label map holds: by the calibration's rule (p <= alpha, or every region of a flagged scan)
    or every one above the threshold."""
    mode = summary.get("regions")
    if mode == "calibrated":
        dropped = len(summary.get("regions_not_kept") or [])
        rule = "every region of a flagged scan" if shows_flagged_scan_regions(summary) else "regions with p <= alpha"
        return [f"label map: {rule}; {dropped} region(s) above the voxel threshold not kept"]
    if summary.get("voxel_threshold_source") == "user":
        return ["label map: every region above the user's voxel threshold (no region p-values)"]
    return ["label map: every region above the voxel threshold (each with its p-value)"] if mode == "all" else []


def summary_text(summary: dict[str, Any], case_id: str, scan_found: bool, scan_path: str) -> str:
    """The case's summary as a few lines: model, subject decision, voxel threshold, regions, notes."""
    model = summary.get("model") or {}
    voxel = finite_number(summary.get("voxel_threshold"))
    lines = [
        f"case {case_id}",
        f"model {model.get('name', '?')} {model.get('version', '')} ({model.get('scorer', '?')})",
        *subject_lines(summary),
        f"calibrated voxel threshold {'?' if voxel is None else f'{voxel:.3f}'}",
        f"detect: {summary.get('n_components', '?')} region(s), "
        f"{finite_number(summary.get('flagged_volume_ml')) or 0.0:.1f} mL "
        f"of {finite_number(summary.get('brain_volume_ml')) or 0.0:.0f} mL brain",
        *region_lines(summary),
    ]
    if not scan_found:
        lines.append(f"scan not found ({scan_path or 'no path recorded'}): heatmap on black")
    lines += [f"warning: {w}" for w in summary.get("warnings", [])]
    return "\n".join(lines)


def region_rows(components: list[dict[str, Any]], p_values: list[float | None], alpha: Any) -> list[dict[str, Any]]:
    """The region list's rows: id, volume, peak, p-value ("n/a" without one), p <= alpha, centroid."""
    limit = finite_number(alpha)
    rows = []
    for i, (component, p) in enumerate(zip(components, p_values)):
        kept = NOT_AVAILABLE if p is None or limit is None else ("yes" if p <= limit else "no")
        rows.append(
            {
                "id": component.get("id", i + 1),
                "volume": f"{float(component['volume_ml']):.2f}",
                "peak": f"{float(component['peak_score']):.2f}",
                "p_value": format_p(p),
                "kept": kept,
                "centroid": ", ".join(f"{v:.1f}" for v in component["centroid_ras_mm"]),
            }
        )
    return rows
