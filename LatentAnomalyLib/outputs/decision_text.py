"""Words for the calibrated decisions of one ``summary.json``, shared by the Slicer module and the review page.

Models from 1.6.0 flag a scan by its largest region peak and show every region of a flagged scan; models 1.5.x
flagged by the subject score and kept the regions whose own p-value is at most alpha. A summary says which through
``subject_region_peak`` and ``conformal.regions_shown`` (absent before 1.6.0).
"""

from __future__ import annotations

from typing import Any

from ..score.conformal import finite_number


def region_peak_text(summary: dict[str, Any]) -> str | None:
    """"largest region peak P (flagged above T)", or None when the subject decision does not read the region peak."""
    peak = finite_number(summary.get("subject_region_peak"))
    if peak is None:
        return None
    threshold = finite_number(summary.get("subject_region_peak_threshold"))
    return f"largest region peak {peak:.2f} (" + (
        "no threshold at this alpha)" if threshold is None else f"flagged above {threshold:.2f})"
    )


def flag_conditions_text(summary: dict[str, Any]) -> str | None:
    """"largest region peak P (flagged above T[, or when the subject score is above S])" for rules that read the
    region peak (with ``combined`` either statistic flags, each at alpha / 2), or None for the other rules."""
    peak = region_peak_text(summary)
    score_threshold = finite_number(summary.get("subject_threshold"))
    if peak is None or score_threshold is None:
        return peak
    return peak[:-1] + f", or when the subject score is above {score_threshold:.2f})"


def age_matching_text(summary: dict[str, Any]) -> str | None:
    """"age-matched: against the N calibration scans aged BAND (age A)" when ``--age`` was given, else None."""
    matched = summary.get("age_matching")
    if not isinstance(matched, dict):
        return None
    return (f"age-matched: against the {matched.get('n_calibration_scans_in_band')} calibration scans aged "
            f"{matched.get('age_band')} (age {matched.get('age'):g})")


def shows_flagged_scan_regions(summary: dict[str, Any]) -> bool:
    """Whether the calibrated label map shows every region of a flagged scan (rather than regions by p-value)."""
    conformal = summary.get("conformal")
    if not isinstance(conformal, dict):
        return False
    rule = conformal.get("regions_shown_rule")
    return rule == "flagged_scan" if rule is not None else "flagged scan" in str(conformal.get("regions_shown", ""))


def calibration_text(summary: dict[str, Any]) -> str | None:
    """"calibration: IXI (118 scans)" or a site's "calibration: <its description> (N scans)": which healthy scans
    the p-values compare with (None for a summary without p-values), and the map they are read on when another
    scorer than the shown one decides. Summaries before site calibration name no source; their calibration was the
    IXI cross-fit, which their description says."""
    conformal = summary.get("conformal")
    if not isinstance(conformal, dict) or finite_number(summary.get("subject_p_value")) is None:
        return None
    source = conformal.get("calibration_source")
    if not source:
        description = str(conformal.get("calibration") or "")
        if not description:  # nothing says which scans
            return None
        n = conformal.get("n_calibration_scans", "?")
        source = f"{'IXI' if 'IXI' in description else 'healthy scans'} ({n} scans)"
    decision = summary.get("subject_decision")
    if isinstance(decision, dict) and decision.get("scorer"):  # model 1.10.0: another map than the heatmap decides
        source += f", read on the map of scorer {decision['scorer']}"
    return f"calibration: {source}"
