"""Conformal p-values: arithmetic, finite-sample guarantee on exchangeable data, region rule, ranking."""

from __future__ import annotations

import math

import numpy as np
import pytest

from LatentAnomalyLib.cohort.records import rank_rows
from LatentAnomalyLib.score.conformal import (
    CalibrationSets,
    check_alpha,
    decision_threshold,
    p_value,
    p_values,
    region_statistic,
)


def test_p_value_counts_calibration_scores_at_least_as_large():
    cal = np.array([1.0, 2.0, 3.0, 4.0])
    assert p_value(3.5, cal) == pytest.approx(2 / 5)
    assert p_value(3.0, cal) == pytest.approx(3 / 5)  # ties count against the scan
    assert p_value(0.0, cal) == pytest.approx(1.0)
    assert p_value(9.0, cal) == pytest.approx(1 / 5)  # never below 1 / (n + 1)
    assert np.allclose(p_values([9.0, 3.5, 0.0], cal[::-1]), [0.2, 0.4, 1.0])


@pytest.mark.parametrize("alpha", [0.005, 0.01, 0.05, 0.1, 0.3])
def test_decision_threshold_agrees_with_the_p_value_rule(alpha):
    rng = np.random.default_rng(1)
    cal = rng.normal(size=118)
    values = np.concatenate([rng.normal(size=2000) * 2, cal])  # includes exact ties with calibration scores
    threshold = decision_threshold(cal, alpha)
    assert np.array_equal(values > threshold, p_values(values, cal) <= alpha)
    if alpha < 1 / 119:
        assert threshold == math.inf


@pytest.mark.parametrize(("n", "alpha", "discrete"), [(20, 0.05, False), (118, 0.05, False), (118, 0.01, True)])
def test_false_flag_rate_is_at_most_alpha_on_exchangeable_scans(n, alpha, discrete):
    """Healthy test scans drawn like the calibration scans: P(p <= alpha) <= alpha, and close to floor(alpha(n+1))/(n+1)."""
    rng = np.random.default_rng(7)
    trials = 20000
    draws = rng.gamma(2.0, size=(trials, n + 1))
    if discrete:  # many ties
        draws = np.round(draws * 2)
    flagged = np.array([p_value(row[-1], row[:-1]) <= alpha for row in draws])
    tolerance = 3 * math.sqrt(alpha * (1 - alpha) / trials)
    assert flagged.mean() <= alpha + tolerance
    exact = math.floor(alpha * (n + 1)) / (n + 1)
    if not discrete:  # continuous scores: the rule uses the whole budget (not a trivially conservative one)
        assert flagged.mean() >= exact - tolerance


def test_scans_with_any_kept_region_are_at_most_alpha_on_exchangeable_scans():
    """Regions against per-scan maxima: a healthy scan shows a kept region with probability <= alpha."""
    rng = np.random.default_rng(3)
    n, alpha, trials = 118, 0.05, 5000
    hits = 0
    for _ in range(trials):
        counts = rng.poisson(2.0, size=n + 1)
        maxima = np.array([rng.exponential(size=c).max() if c else 0.0 for c in counts])
        test_regions = rng.exponential(size=counts[-1])
        hits += bool(test_regions.size and (p_values(test_regions, maxima[:-1]) <= alpha).any())
    assert hits / trials <= alpha + 3 * math.sqrt(alpha * (1 - alpha) / trials)
    assert hits / trials >= 0.03  # and the rule is not vacuous


def _sets(**kwargs) -> CalibrationSets:
    values = dict(
        subject_scores=np.arange(1.0, 20.0),
        region_max=np.tile(np.arange(10.0), 2),
        region_statistic="peak",
        subject_statistic="raw",
        description="test",
        voxel_threshold=0.5,
    )
    values.update(kwargs)
    return CalibrationSets(**values)


def test_region_p_values_and_subject_fields():
    sets = _sets()
    regions = sets.regions([{"peak_score": 8.5, "volume_ml": 1.0, "mean_score": 1.0}, {"peak_score": 100.0,
                            "volume_ml": 1.0, "mean_score": 1.0}], alpha=0.05)
    assert [r["p_value"] for r in regions] == pytest.approx([3 / 21, 1 / 21])
    assert [r["p_value_at_most_alpha"] for r in regions] == [False, True]
    subject = sets.subject(19.5, 0.05)
    assert subject["subject_p_value"] == pytest.approx(1 / 20) and subject["subject_flagged"]
    assert subject["subject_threshold"] == 19.0
    assert sets.subject(30.0, 0.01)["subject_threshold"] is None  # no score reaches p <= 0.01 with n = 19
    assert not sets.subject(30.0, 0.01)["subject_flagged"]


def test_region_statistics():
    region = {"peak_score": 4.0, "volume_ml": 2.0, "mean_score": 3.0}
    assert region_statistic(region, "peak", 2.5) == 4.0
    assert region_statistic(region, "volume", 2.5) == 2.0
    assert region_statistic(region, "mass", 2.5) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        region_statistic(region, "area", 2.5)
    for bad in (0.0, 1.0, -0.1, 2):
        with pytest.raises(ValueError):
            check_alpha(bad)


def test_scores_table_ranks_by_p_value_then_score():
    rows = [
        {"case_id": "a", "subject_score": 5.0, "p_value": 0.2},
        {"case_id": "b", "subject_score": 9.0, "p_value": 1 / 119},
        {"case_id": "c", "subject_score": 7.0, "p_value": 1 / 119},
        {"case_id": "d", "subject_score": None, "p_value": None, "status": "failed"},
        {"case_id": "e", "subject_score": 6.0, "p_value": 0.5},
    ]
    ranked = rank_rows(rows)
    assert [r["case_id"] for r in ranked] == ["b", "c", "a", "e", "d"]
    assert [r["rank"] for r in ranked] == [1, 2, 3, 4, ""]
    old = [{"case_id": "x", "subject_score": 1.0}, {"case_id": "y", "subject_score": 3.0}]  # bundles without p-values
    assert [r["case_id"] for r in rank_rows(old)] == ["y", "x"]


def test_combined_subject_p_value_is_bonferroni_over_map_and_region_peak():
    sets = _sets(subject_statistic="combined")
    # map statistic 19.5 -> p 1/20; region peak 8.5 -> p 3/21: p = 2 min(...) = 1/10
    fields = sets.subject(19.5, 0.1, region_peak=8.5)
    assert fields["subject_p_value"] == pytest.approx(0.1) and fields["subject_flagged"]
    assert not sets.subject(19.5, 0.05, region_peak=8.5)["subject_flagged"]
    assert sets.subject(0.0, 0.05, region_peak=100.0)["subject_p_value"] == pytest.approx(2 / 21)
    assert sets.subject(0.0, 0.5, region_peak=0.0)["subject_p_value"] == 1.0  # capped
    # thresholds at alpha / 2: either statistic above its threshold flags the scan
    t = sets.thresholds(0.2)
    assert t["subject_threshold"] == decision_threshold(sets.subject_scores, 0.1)
    assert t["subject_region_peak_threshold"] == decision_threshold(sets.region_max, 0.1)
    assert sets.subject(t["subject_threshold"] + 1e-9, 0.2)["subject_flagged"]
    assert sets.subject(0.0, 0.2, region_peak=t["subject_region_peak_threshold"] + 1e-9)["subject_flagged"]
    assert not sets.subject(t["subject_threshold"], 0.2, region_peak=t["subject_region_peak_threshold"])["subject_flagged"]


def test_region_peak_subject_statistic_reads_only_the_region_peak():
    sets = _sets(subject_statistic="region_peak")
    assert sets.subject(1e9, 0.05, region_peak=0.0)["subject_p_value"] == 1.0
    assert sets.subject(0.0, 0.05, region_peak=100.0)["subject_p_value"] == pytest.approx(1 / 21)
    assert sets.thresholds(0.05)["subject_threshold"] is None


def test_rules_refuse_inconsistent_settings():
    with pytest.raises(ValueError, match="needs region statistic peak"):
        _sets(subject_statistic="combined", region_statistic="mass")
    with pytest.raises(ValueError, match="unknown subject statistic"):
        _sets(subject_statistic="median")
    with pytest.raises(ValueError, match="regions_shown"):
        _sets(regions_shown="some")


def test_flagged_scan_rule_shows_every_region_of_a_flagged_scan_only():
    regions = [{"peak_score": 1.0, "volume_ml": 1.0, "mean_score": 1.0}, {"peak_score": 100.0, "volume_ml": 1.0,
               "mean_score": 1.0}]
    by_p = _sets()
    by_flag = _sets(regions_shown="flagged_scan")
    scored = by_p.regions(regions, 0.05)
    assert [r["peak_score"] for r in by_p.shown(scored, flagged=False)] == [100.0]
    assert by_flag.shown(scored, flagged=False) == []
    assert by_flag.shown(scored, flagged=True) == scored  # each still carries its own p-value
    assert "flagged scan" in by_flag.describe(0.05)["regions_shown"]


def test_combined_flag_and_flagged_scan_regions_keep_alpha_on_exchangeable_scans():
    """Bonferroni over two dependent statistics, regions only in flagged scans: both rates <= alpha."""
    rng = np.random.default_rng(3)
    n, alpha, trials = 118, 0.05, 4000
    flagged = shows = 0
    for _ in range(trials):
        maps = rng.gamma(2.0, size=n + 1)
        peaks = maps * 0.5 + rng.exponential(size=n + 1)  # correlated with the map statistic
        sets = _sets(subject_scores=maps[:-1], region_max=peaks[:-1], subject_statistic="combined",
                     regions_shown="flagged_scan")
        fields = sets.subject(maps[-1], alpha, region_peak=peaks[-1])
        flagged += fields["subject_flagged"]
        region = {"peak_score": peaks[-1], "volume_ml": 1.0, "mean_score": 1.0}
        shows += bool(sets.shown(sets.regions([region], alpha), fields["subject_flagged"]))
    tolerance = 3 * math.sqrt(alpha * (1 - alpha) / trials)
    assert flagged / trials <= alpha + tolerance and shows / trials <= alpha + tolerance
    assert flagged / trials >= 0.02  # not vacuous


def test_ties_in_p_value_rank_by_the_largest_region_peak_then_the_score():
    rows = [
        {"case_id": "a", "subject_score": 9.0, "p_value": 1.0, "largest_region_peak": 2.0},
        {"case_id": "b", "subject_score": 5.0, "p_value": 1.0, "largest_region_peak": 4.0},
        {"case_id": "c", "subject_score": 7.0, "p_value": 1.0, "largest_region_peak": None},
        {"case_id": "d", "subject_score": 8.0, "p_value": 1.0, "largest_region_peak": 4.0},
    ]
    assert [r["case_id"] for r in rank_rows(rows)] == ["d", "b", "a", "c"]


def test_smallest_p_note_exactly_below_one_over_n_plus_one():
    sets = _sets()  # 19 calibration scans
    assert sets.smallest_p_note(1 / 20) is None and sets.smallest_p_note(0.5) is None
    assert "1/20 = 0.0500" in sets.smallest_p_note(0.049)
    combined = _sets(subject_statistic="combined")  # Bonferroni: p >= 2 / (n + 1)
    assert combined.smallest_p_note(0.1) is None and "2/20 = 0.1000" in combined.smallest_p_note(0.09)


def test_summary_names_the_rule_and_the_subject_fields():
    described = _sets(subject_statistic="region_peak", regions_shown="flagged_scan").describe(0.05)
    assert described["subject_statistic_name"] == "region_peak" and described["regions_shown_rule"] == "flagged_scan"
    assert "subject_score: mean of the top 1%" in described["subject_fields"]
    assert "subject_region_peak: largest region peak" in described["subject_fields"]
    # the subject score's own alpha threshold is written whatever decides the flag
    assert _sets(subject_statistic="region_peak").thresholds(0.05)["subject_score_threshold"] == decision_threshold(
        np.arange(1.0, 20.0), 0.05
    )
