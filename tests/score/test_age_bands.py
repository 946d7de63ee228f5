"""Age-matched conformal p-values (score/age_bands.py): band membership, the subset's p-values, and the guarantee
holding inside each band when healthy scores drift with age."""

from __future__ import annotations

import math

import numpy as np
import pytest

from LatentAnomalyLib.score.age_bands import (
    AGE_CUTS,
    age_matched,
    band_index,
    band_label,
    calibration_for_age,
    check_age,
    cohort_notes,
)
from LatentAnomalyLib.score.conformal import CalibrationSets, p_value


def _sets(scores, ages) -> CalibrationSets:
    scores = np.asarray(scores, dtype=float)
    return CalibrationSets(scores, scores.copy(), "peak", "region_peak", "test", 1.0, "flagged_scan",
                           ages=np.asarray(ages, dtype=float), age_cuts=AGE_CUTS)


def test_bands_and_labels():
    assert [band_index(a, AGE_CUTS) for a in (0, 39.99, 40, 59.9, 60, 120)] == [0, 0, 1, 1, 2, 2]
    assert [band_label(i, AGE_CUTS) for i in range(3)] == ["under 40", "40 to under 60", "60 or older"]
    for bad in (-1, 131, math.nan, math.inf, True, "50"):
        with pytest.raises(ValueError, match="age must be"):
            check_age(bad)


def test_subset_holds_only_the_band_and_drops_unknown_ages():
    sets = _sets([1, 2, 3, 4, 5, 6], [25, 45, 65, 70, math.nan, 39])
    old, info = age_matched(sets, 75.0)
    assert list(old.region_max) == [3, 4] and info["n_calibration_scans_in_band"] == 2
    assert info["age_band"] == "60 or older" and info["calibration_ages"] == [25.0, 70.0]
    assert not info["age_inside_calibration_ages"]  # 75 is above every calibration age
    young, _ = age_matched(sets, 30.0)
    assert list(young.region_max) == [1, 6]
    assert young.subject(5.0, 0.5, region_peak=5.0)["subject_p_value"] == p_value(5.0, np.array([1.0, 6.0]))


def test_model_without_ages_or_empty_band_is_refused_and_outside_ages_noted():
    plain = CalibrationSets(np.ones(3), np.ones(3), "peak", "region_peak", "t", 1.0, "flagged_scan")
    with pytest.raises(ValueError, match="stores no calibration ages"):
        calibration_for_age(plain, 50.0, "m 1.0")
    with pytest.raises(ValueError, match="no healthy calibration scan is aged 40 to under 60"):
        age_matched(_sets([1, 2], [25, 65]), 50.0)
    _, info, note = calibration_for_age(_sets([1, 2, 3], [25, 45, 65]), 90.0, "m 1.0")
    assert info["age_band"] == "60 or older" and "outside the calibration scans' ages (25.0-65.0)" in note
    assert calibration_for_age(_sets([1, 2, 3], [25, 45, 65]), 44.0, "m 1.0")[2] is None


def test_age_matched_flags_keep_alpha_in_each_band_where_marginal_ones_do_not():
    """Healthy scores rising with age: the marginal p-value over-flags the old and under-flags the young; the band's
    p-value keeps P(flag) <= alpha within each band (exchangeable within the band)."""
    rng = np.random.default_rng(5)
    alpha, trials, n = 0.2, 3000, 120
    marginal = {0: 0, 2: 0}
    matched = {0: 0, 2: 0}
    counts = {0: 0, 2: 0}
    for _ in range(trials):
        ages = rng.uniform(20, 80, n + 1)
        scores = ages / 10.0 + rng.normal(size=n + 1)
        test_age, test_score = ages[-1], scores[-1]
        band = band_index(test_age, AGE_CUTS)
        if band == 1:
            continue
        sets = _sets(scores[:-1], ages[:-1])
        counts[band] += 1
        marginal[band] += sets.subject(test_score, alpha, test_score)["subject_p_value"] <= alpha
        sub, _ = age_matched(sets, test_age)
        matched[band] += sub.subject(test_score, alpha, test_score)["subject_p_value"] <= alpha
    for band in (0, 2):
        tolerance = 3 * math.sqrt(alpha * (1 - alpha) / counts[band])
        assert matched[band] / counts[band] <= alpha + tolerance
    assert marginal[2] / counts[2] > alpha + 0.1 and marginal[0] / counts[0] < alpha - 0.1  # the drift is real


def test_cohort_notes_refuse_unusable_ages_and_name_bands_that_cannot_flag():
    plain = CalibrationSets(np.ones(3), np.ones(3), "peak", "region_peak", "t", 1.0, "flagged_scan")
    with pytest.raises(ValueError, match="age column needs calibration ages"):
        cohort_notes(plain, [None, 50.0], 0.05, "m")
    with pytest.raises(ValueError, match="age column needs calibration ages"):
        cohort_notes(None, [50.0], 0.05, "m")
    assert cohort_notes(None, [None], 0.05, "m") == [] and cohort_notes(plain, [None], 0.5, "m") == []
    sets = _sets(np.arange(12.0), [25] * 4 + [45] * 2 + [65] * 6)  # bands of 4, 2 and 6 scans
    notes = cohort_notes(sets, [30.0, 50.0, None], 0.2, "m")  # 1/5, 1/3 and 1/13 against 0.2
    assert len(notes) == 1 and notes[0].startswith("scans aged 40 to under 60: alpha 0.2 is below 1/3")
    assert cohort_notes(sets, [70.0], 0.05, "m") == ["scans aged 60 or older: alpha 0.05 is below 1/7 = 0.1429, "
                                                     "the smallest p-value 6 calibration scans can give: no scan can "
                                                     "be flagged at this alpha"]
