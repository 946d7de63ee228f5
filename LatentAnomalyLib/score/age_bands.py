"""Age-matched calibration: conformal p-values against the healthy calibration scans of the patient's age band.

Why: healthy brains change with age (larger ventricles and sulci, white-matter changes), and the default map scores
older healthy brains higher: among model 1.7.0's 118 cross-fit calibration scans the largest region peak correlates
with age (Spearman 0.43; ``experiments/calibration_shift.py``). A p-value against every calibration scan is valid on
average over the calibration scans' ages (marginal), but healthy scans of older adults get small p-values more
often than alpha and those of younger adults less often. Normative tools compare a patient with healthy people of the
same age; this module does the same with a Mondrian (per-category) conformal p-value: the scan is compared only with
the calibration scans of its age band, so ``P(flag) <= alpha`` holds for healthy scans exchangeable with that band's
calibration scans.

The bands are fixed, not fitted: under 40, 40 to 59, 60 and older (cut points :data:`AGE_CUTS`, in years), the
clinical decades that keep at least 34 of the 115 calibration scans with a known age in each band. The smallest
p-value a band can give is 1 / (n_band + 1) (about 0.03 for 34 scans): at alpha 0.01 an age-matched scan cannot be
flagged, and detection says so.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

AGE_CUTS: tuple[float, ...] = (40.0, 60.0)  # band edges in years: [.., 40), [40, 60), [60, ..)
MAX_AGE = 130.0


def check_age(age: Any) -> float:
    """A patient age in years: a finite number from 0 to 130."""
    if isinstance(age, bool) or not isinstance(age, (int, float)) or not math.isfinite(age) or not 0 <= age <= MAX_AGE:
        raise ValueError(f"age must be a number of years from 0 to {MAX_AGE:g}, got {age!r}")
    return float(age)


def band_index(age: float, cuts: Sequence[float]) -> int:
    """Which band ``age`` falls in: 0 below the first cut, len(cuts) at or above the last."""
    return int(np.searchsorted(np.asarray(cuts, dtype=float), age, side="right"))


def band_label(index: int, cuts: Sequence[float]) -> str:
    if not cuts:
        return "every age"
    if index == 0:
        return f"under {cuts[0]:g}"
    if index == len(cuts):
        return f"{cuts[-1]:g} or older"
    return f"{cuts[index - 1]:g} to under {cuts[index]:g}"


def cohort_notes(sets: Any, ages: Sequence[float | None], alpha: float, model: str) -> list[str]:
    """What a cohort run must say before it starts: refuses ages for ``sets`` without calibration ages (or without
    sets), and names the age bands (or the whole calibration) in which no scan can be flagged at ``alpha``."""
    known = sorted({float(a) for a in ages if a is not None})
    if known and (sets is None or sets.ages is None):
        raise ValueError(f"the list's age column needs calibration ages, and model {model} stores none; remove the "
                         "column (p-values against every calibration scan)")
    if sets is None:
        return []
    notes = []
    if len(known) < len(ages) and (note := sets.smallest_p_note(alpha)):
        notes.append(f"scans without an age: {note}")
    for index in sorted({band_index(a, sets.age_cuts) for a in known}):
        subset, info = age_matched(sets, next(a for a in known if band_index(a, sets.age_cuts) == index))
        if note := subset.smallest_p_note(alpha):
            notes.append(f"scans aged {info['age_band']}: {note}")
    return notes


def calibration_for_age(sets: Any, age: float, model: str) -> tuple[Any, dict[str, Any], str | None]:
    """:func:`age_matched` for detection: refuses a model without calibration ages, and adds the note to show when
    ``age`` lies outside the calibration scans' ages (its band's guarantee does not cover it)."""
    if sets.ages is None:
        raise ValueError(f"model {model} stores no calibration ages; run without --age (p-values against every "
                         "calibration scan)")
    subset, info = age_matched(sets, age)
    note = None
    if not info["age_inside_calibration_ages"] and info["calibration_ages"]:
        low, high = info["calibration_ages"]
        note = f"age {age:g} is outside the calibration scans' ages ({low:.1f}-{high:.1f}): its band's guarantee does not cover it"
    return subset, info, note


def age_matched(sets: Any, age: float) -> tuple[Any, dict[str, Any]]:
    """``sets`` (a :class:`.conformal.CalibrationSets` with ``ages``) restricted to the scans of ``age``'s band, and
    what summary.json states about it: the band, its number of scans and the calibration ages it spans. A scan of
    unknown age (NaN) belongs to no band."""
    ages = np.asarray(sets.ages, dtype=float)
    cuts = tuple(sets.age_cuts)
    index = band_index(age, cuts)
    known = np.isfinite(ages)
    member = known & (np.searchsorted(np.asarray(cuts, dtype=float), np.where(known, ages, 0.0), side="right") == index)
    if not member.any():
        raise ValueError(f"no healthy calibration scan is aged {band_label(index, cuts)} in this model")
    subset = replace(
        sets, subject_scores=sets.subject_scores[member], region_max=sets.region_max[member], ages=ages[member]
    )
    inside = bool(known.any()) and float(ages[known].min()) <= age <= float(ages[known].max())
    info = {
        "age": age,
        "age_band": band_label(index, cuts),
        "n_calibration_scans_in_band": int(member.sum()),
        "calibration_ages": [float(ages[known].min()), float(ages[known].max())] if known.any() else None,
        "age_inside_calibration_ages": inside,
    }
    return subset, info
