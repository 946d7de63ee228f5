"""Conformal p-values for the subject flag and for each flagged region, against healthy calibration sets.

A bundle may store, per scorer, two calibration sets measured on healthy scans that the scorer was not
fitted on (cross-fitting, see :mod:`..training.crossfit`):

- ``subject_scores`` (n,): each healthy scan's map statistic (:func:`.subject.map_statistic`);
- ``region_max`` (n,): each healthy scan's largest region statistic (0 when it has no region).

A new scan with statistic ``s`` gets ``p = (1 + #{calibration values >= s}) / (n + 1)``; for a healthy scan
exchangeable with the calibration scans, ``P(p <= alpha) <= alpha`` (finite-sample; Vovk et al. 2005). The subject
p-value is that of the map statistic, of the scan's largest region peak (``region_peak``), or the Bonferroni
combination of both (``combined``: ``min(1, 2 min(p_map, p_peak))``, still ``P(p <= alpha) <= alpha``); the scan is
flagged when it is ``<= alpha``. Each region above the voxel threshold gets ``p = (1 + #{region_max >= t}) / (n + 1)``
for its statistic ``t``. The label map shows (``regions_shown``) either the regions with ``p <= alpha``
(``p_value``: a healthy scan shows any region exactly when its own largest region statistic has p <= alpha) or
every region of a flagged scan and none of the others (``flagged_scan``: a healthy scan shows a region only when it
is flagged); either way ``P(a healthy exchangeable scan shows a false-positive region) <= alpha``. Both guarantees
are marginal (over scans) and assume exchangeability: they do not hold for scanners, protocols or ages unlike the
calibration population.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

REGION_STATISTICS = ("peak", "volume", "mass")
DEFAULT_ALPHA = 0.05
# Subject statistic -> the map statistic its ``subject_scores`` hold (region_peak keeps it for the percentile).
SUBJECT_MAP_PART = {
    "raw": "raw",
    "normalised": "normalised",
    "normalised_top01": "normalised_top01",
    "region_peak": "normalised",
    "combined": "normalised",
}
SUBJECT_DESCRIPTIONS = {
    "raw": "mean of the top 1% brain voxel scores",
    "normalised": "mean of the top 1% brain voxel scores of the scan-standardised score map",
    "normalised_top01": "mean of the top 0.1% brain voxel scores of the scan-standardised score map",
    "region_peak": "largest region peak score",
    "combined": "Bonferroni over the mean of the top 1% brain voxel scores of the scan-standardised score map and "
    "the largest region peak score: p = min(1, 2 min(p_map, p_peak))",
}
REGIONS_SHOWN = ("p_value", "flagged_scan")


def p_value_factor(subject_statistic: str) -> int:
    """How many calibration p-values a subject p-value multiplies: 2 for the Bonferroni ``combined`` statistic,
    1 otherwise. The smallest p-value n calibration scans can give is ``factor / (n + 1)``."""
    return 2 if subject_statistic == "combined" else 1


def p_values(values: np.ndarray | Sequence[float] | float, calibration: np.ndarray) -> np.ndarray:
    """Conformal p-values ``(1 + #{calibration >= v}) / (n + 1)`` of each value (larger value = more anomalous)."""
    cal = np.sort(np.asarray(calibration, dtype=np.float64))
    v = np.atleast_1d(np.asarray(values, dtype=np.float64))
    at_least = cal.size - np.searchsorted(cal, v, side="left")
    return (1.0 + at_least) / (cal.size + 1.0)


def p_value(value: float, calibration: np.ndarray) -> float:
    return float(p_values(value, calibration)[0])


def decision_threshold(calibration: np.ndarray, alpha: float) -> float:
    """The value above which ``p <= alpha``: ``v > threshold`` exactly when ``p_value(v) <= alpha``.

    With the calibration values sorted from the largest, it is the ``(m + 1)``-th of them, where
    ``m = floor(alpha (n + 1)) - 1`` is how many calibration values may be at least ``v``; ``inf`` when
    ``alpha < 1 / (n + 1)`` (no value can reach such a p-value).
    """
    cal = np.sort(np.asarray(calibration, dtype=np.float64))[::-1]
    m = math.floor(alpha * (cal.size + 1) + 1e-9) - 1
    if m < 0:
        return math.inf
    if m >= cal.size:
        return -math.inf
    return float(cal[m])


def finite_number(value: Any) -> float | None:
    """``value`` as a finite float, or None (missing, null, not a number, infinite). JSON has no infinity: a
    threshold no value can pass is written as ``None``, and every viewer reads summary numbers through this."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def region_statistic(component: dict[str, Any], statistic: str, threshold: float) -> float:
    """One region's statistic: its ``peak`` score, its ``volume`` (mL) or its ``mass`` (mL x mean excess)."""
    if statistic == "peak":
        return float(component["peak_score"])
    if statistic == "volume":
        return float(component["volume_ml"])
    if statistic == "mass":
        return float(component["volume_ml"]) * max(float(component["mean_score"]) - threshold, 0.0)
    raise ValueError(f"unknown region statistic {statistic!r}; known: {', '.join(REGION_STATISTICS)}")


def check_alpha(alpha: float) -> float:
    if not (isinstance(alpha, (int, float)) and 0.0 < float(alpha) < 1.0):
        raise ValueError(f"alpha must lie strictly between 0 and 1, got {alpha!r}")
    return float(alpha)


@dataclass
class CalibrationSets:
    """One scorer's healthy calibration sets and the rules that use them (see the module docstring)."""

    subject_scores: np.ndarray
    region_max: np.ndarray
    region_statistic: str
    subject_statistic: str
    description: str
    voxel_threshold: float
    regions_shown: str = "p_value"
    ages: np.ndarray | None = None  # each calibration scan's age in years (NaN unknown), for age-matched p-values
    age_cuts: tuple[float, ...] = ()  # the age bands' edges (see age_bands.py)
    source: str = ""  # who the calibration scans are, in a few words ("IXI", a site's description)

    def __post_init__(self) -> None:
        problem = _rule_problem(self.subject_statistic, self.region_statistic, self.regions_shown)
        if problem:
            raise ValueError(problem)

    @property
    def n(self) -> int:
        return int(self.subject_scores.size)

    @property
    def label(self) -> str:
        """Which calibration a p-value comes from, as every door names it: "IXI (118 scans)"."""
        return f"{self.source or 'healthy scans'} ({self.n} scans)"

    @property
    def map_statistic(self) -> str:
        return SUBJECT_MAP_PART[self.subject_statistic]

    @property
    def uses_region_peak(self) -> bool:
        return self.subject_statistic in ("region_peak", "combined")

    def subject(self, score: float, alpha: float, region_peak: float = 0.0) -> dict[str, Any]:
        """p-value, flag and the equivalent thresholds of one scan: ``score`` is its map statistic, ``region_peak``
        its largest region peak score at the calibrated voxel threshold (0 without a region)."""
        p_map = p_value(score, self.subject_scores)
        if self.subject_statistic == "region_peak":
            p = p_value(region_peak, self.region_max)
        elif self.subject_statistic == "combined":
            p = min(1.0, 2.0 * min(p_map, p_value(region_peak, self.region_max)))
        else:
            p = p_map
        fields = {
            "subject_p_value": p,
            "subject_flagged": bool(p <= alpha),
            "subject_healthy_percentile": float((self.subject_scores < score).mean() * 100.0),
            **self.thresholds(alpha),
        }
        if self.uses_region_peak:
            fields["subject_region_peak"] = float(region_peak)
        return fields

    def thresholds(self, alpha: float) -> dict[str, float | None]:
        """The values above which a scan is flagged at ``alpha``: its map statistic (``subject_threshold``; None
        when only the region peak decides) or, with the region peak, its largest region peak score (either one
        suffices; each at alpha / 2 for ``combined``)."""
        level = alpha / p_value_factor(self.subject_statistic)
        out: dict[str, float | None] = {
            "subject_threshold": None
            if self.subject_statistic == "region_peak"
            else finite_number(decision_threshold(self.subject_scores, level)),
            # the subject score's own alpha threshold, whatever decides the flag (the out-of-distribution check)
            "subject_score_threshold": finite_number(decision_threshold(self.subject_scores, alpha)),
        }
        if self.uses_region_peak:
            out["subject_region_peak_threshold"] = finite_number(decision_threshold(self.region_max, level))
        return out

    def regions(self, components: list[dict[str, Any]], alpha: float) -> list[dict[str, Any]]:
        """``components`` with their ``region_statistic`` and ``p_value`` added (new dicts)."""
        stats = [region_statistic(c, self.region_statistic, self.voxel_threshold) for c in components]
        ps = p_values(stats, self.region_max) if stats else np.zeros(0)
        return [
            {**c, "region_statistic": float(t), "p_value": float(p), "p_value_at_most_alpha": bool(p <= alpha)}
            for c, t, p in zip(components, stats, ps)
        ]

    def shown(self, regions: list[dict[str, Any]], flagged: bool) -> list[dict[str, Any]]:
        """The regions (from :meth:`regions`) the label map keeps: by their own p-value, or all of a flagged scan."""
        if self.regions_shown == "flagged_scan":
            return list(regions) if flagged else []
        return [r for r in regions if r["p_value_at_most_alpha"]]

    def smallest_p_note(self, alpha: float) -> str | None:
        """A note when no scan can be flagged at ``alpha``: p-values are at least 1 / (n + 1) (2 / (n + 1) for the
        Bonferroni ``combined`` statistic)."""
        factor = p_value_factor(self.subject_statistic)
        smallest = factor / (self.n + 1)
        if alpha >= smallest:
            return None
        return (
            f"alpha {alpha:g} is below {factor}/{self.n + 1} = {smallest:.4f}, the smallest p-value {self.n} "
            "calibration scans can give: no scan can be flagged at this alpha"
        )

    def describe(self, alpha: float, regions: str = "calibrated", band: str | None = None) -> dict[str, Any]:
        """What summary.json states about the calibration and its guarantee; ``regions`` "all" (every region above
        the voxel threshold in the label map) leaves the label map without a guarantee; ``band`` names the age band
        these sets were restricted to (age-matched p-values)."""
        scans = f"{self.n} healthy calibration scans" + (f" aged {band}" if band else "")
        if regions == "all":
            shown = "every region above the voxel threshold (--regions all or --threshold): not the calibrated rule"
            label_map = "the label map has no false-positive guarantee in this mode"
        else:
            shown = (
                "every region of a flagged scan"
                if self.regions_shown == "flagged_scan"
                else "the regions whose region p-value is at most alpha"
            )
            label_map = f"P(any region kept in the label map) <= {alpha:g}"
        return {
            "alpha": alpha,
            "calibration": self.description,
            "calibration_source": self.label,
            "n_calibration_scans": self.n,
            "subject_statistic": SUBJECT_DESCRIPTIONS[self.subject_statistic],
            "subject_statistic_name": self.subject_statistic,
            "subject_fields": "subject_score: "
            + SUBJECT_DESCRIPTIONS[self.map_statistic]
            + ("; subject_region_peak: largest region peak score" if self.uses_region_peak else ""),
            "region_statistic": self.region_statistic,
            "region_statistic_threshold": finite_number(decision_threshold(self.region_max, alpha)),
            "regions_shown": shown,
            "regions_shown_rule": self.regions_shown,
            "guarantee": (
                f"for a healthy scan exchangeable with the {scans}, P(subject flagged) <= {alpha:g}; {label_map}; "
                "not guaranteed for other scanners, protocols or ages"
            ),
        }


def _rule_problem(subject: str, region: str, shown: str) -> str | None:
    if subject not in SUBJECT_MAP_PART:
        return f"unknown subject statistic {subject!r}; known: {', '.join(SUBJECT_MAP_PART)}"
    if region not in REGION_STATISTICS:
        return f"unknown region statistic {region!r}; known: {', '.join(REGION_STATISTICS)}"
    if shown not in REGIONS_SHOWN:
        return f"unknown regions_shown {shown!r}; known: {', '.join(REGIONS_SHOWN)}"
    if subject in ("region_peak", "combined") and region != "peak":
        return f"subject statistic {subject} needs region statistic peak, not {region}"
    return None


def _entry_subject(entry: dict[str, Any]) -> str:
    return str(entry.get("subject_statistic") or ("normalised" if entry.get("subject_normalised") else "raw"))


def rule_problem(entry: dict[str, Any]) -> str | None:
    """Why a bundle's ``conformal`` entry names a rule this library does not know (None when it is usable)."""
    return _rule_problem(
        _entry_subject(entry), str(entry.get("region_statistic")), str(entry.get("regions_shown", "p_value"))
    )


def load_sets(model: Any, scorer: str) -> CalibrationSets | None:
    """The calibration sets a bundle stores for ``scorer``, or ``None`` (bundles before model 1.5.0)."""
    entry = model.calibration.get("scorers", {}).get(scorer, {}).get("conformal")
    if not entry:
        return None
    arrays = model.bundle.arrays(entry["arrays"])
    prefix = entry.get("prefix", scorer)
    ages = arrays.get(f"{prefix}.ages")
    return CalibrationSets(
        subject_scores=np.asarray(arrays[f"{prefix}.subject_scores"], dtype=np.float64),
        region_max=np.asarray(arrays[f"{prefix}.region_max"], dtype=np.float64),
        region_statistic=str(entry["region_statistic"]),
        subject_statistic=_entry_subject(entry),
        description=str(entry.get("description", "")),
        voxel_threshold=float(model.calibration["scorers"][scorer]["voxel_threshold"]),
        regions_shown=str(entry.get("regions_shown", "p_value")),
        ages=None if ages is None else np.asarray(ages, dtype=np.float64),
        age_cuts=tuple(float(c) for c in entry.get("age_cuts", ())) if ages is not None else (),
        source=sets_source(entry),
    )


def sets_source(entry: dict[str, Any]) -> str:
    """The calibration scans in a few words: the entry's ``source`` (site calibration, ``latent-anomaly train``);
    bundles before it were all cross-fitted over IXI scans, which their description names."""
    if entry.get("source"):
        return str(entry["source"])
    return "IXI" if "IXI" in str(entry.get("description", "")) else "training scans"
