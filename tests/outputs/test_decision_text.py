"""Words for the calibrated decisions (shared by the Slicer module and the review page) and the score warning."""

from __future__ import annotations

from LatentAnomalyLib.outputs.decision_text import (
    calibration_text,
    flag_conditions_text,
    region_peak_text,
    shows_flagged_scan_regions,
)
from LatentAnomalyLib.outputs.detection import out_of_distribution_warnings

PEAK = {"subject_region_peak": 9.254, "subject_region_peak_threshold": 8.175, "subject_threshold": None}


def test_region_peak_rules_state_what_flags_the_scan():
    assert region_peak_text(PEAK) == "largest region peak 9.25 (flagged above 8.18)"
    assert flag_conditions_text(PEAK) == "largest region peak 9.25 (flagged above 8.18)"
    combined = {**PEAK, "subject_threshold": 6.5}  # Bonferroni: either statistic flags the scan
    assert flag_conditions_text(combined) == (
        "largest region peak 9.25 (flagged above 8.18, or when the subject score is above 6.50)"
    )
    assert region_peak_text({**PEAK, "subject_region_peak_threshold": None}).endswith("(no threshold at this alpha)")
    assert region_peak_text({"subject_threshold": 6.1}) is None and flag_conditions_text({}) is None  # 1.5.x


def test_which_label_map_rule_a_summary_describes():
    assert shows_flagged_scan_regions({"conformal": {"regions_shown_rule": "flagged_scan"}})
    assert not shows_flagged_scan_regions({"conformal": {"regions_shown_rule": "p_value"}})
    assert shows_flagged_scan_regions({"conformal": {"regions_shown": "every region of a flagged scan"}})  # no key
    assert not shows_flagged_scan_regions({"conformal": {"regions_shown": "the regions whose region p-value ..."}})
    assert not shows_flagged_scan_regions({}) and not shows_flagged_scan_regions({"conformal": None})


def test_score_warning_uses_the_scores_own_threshold_when_the_region_peak_decides():
    base = {"subject_score": 20.0, "brain_volume_ml": 1400.0}
    assert out_of_distribution_warnings({**base, "subject_threshold": None}) == []  # nothing to compare with
    warned = out_of_distribution_warnings({**base, "subject_threshold": None, "subject_score_threshold": 6.0})
    assert len(warned) == 1 and "more than 3x the threshold (6.00)" in warned[0]
    assert out_of_distribution_warnings({**base, "subject_threshold": 6.0}) != []  # 1.5.x summaries
    assert out_of_distribution_warnings({**base, "subject_score": 12.0, "subject_score_threshold": 6.0}) == []


def test_age_matching_is_named_in_the_slicer_and_review_texts():
    from LatentAnomalyLib.outputs.decision_text import age_matching_text
    from LatentAnomalyReview.summary import subject_lines
    from tests.slicer_gui import results

    summary = {"subject_p_value": 0.2, "alpha": 0.05, "subject_flagged": False, "subject_score": 3.0,
               "subject_region_peak": 6.0, "subject_region_peak_threshold": 13.0, "subject_threshold": None,
               "model": {"name": "m", "version": "1.8.0", "scorer": "s"}, "components": [], "n_components": 0,
               "age_matching": {"age": 67.0, "age_band": "60 or older", "n_calibration_scans_in_band": 34}}
    text = "age-matched: against the 34 calibration scans aged 60 or older (age 67)"
    assert age_matching_text(summary) == text and age_matching_text({**summary, "age_matching": None}) is None
    assert subject_lines(summary)[1] == text
    assert "Age-matched: against the 34 calibration scans aged 60 or older (age 67)" in results.format_summary(summary)


def test_calibration_text_names_the_healthy_scans_a_p_value_compares_with():
    site = {"subject_p_value": 0.2, "conformal": {"calibration_source": "Scanner B (40 scans)", "n_calibration_scans": 40}}
    assert calibration_text(site) == "calibration: Scanner B (40 scans)"
    older = {"subject_p_value": 0.2, "conformal": {"calibration": "5-fold cross-fit over 118 healthy IXI scans (...)",
                                                   "n_calibration_scans": 118}}
    assert calibration_text(older) == "calibration: IXI (118 scans)"  # summaries before site calibration
    assert calibration_text({**site, "subject_p_value": None}) is None  # no p-value, nothing to name
    assert calibration_text({"subject_p_value": 0.2}) is None
    assert calibration_text({"subject_p_value": 0.2, "conformal": {"regions_shown": "..."}}) is None  # says nothing


def test_calibration_text_names_the_decision_scorers_map_when_another_map_decides():
    summary = {"subject_p_value": 0.2, "conformal": {"calibration_source": "IXI (118 scans)"},
               "subject_decision": {"scorer": "gaussian4mm_atlas_location", "shown_scorer": "gaussian4mm_atlas"}}
    assert calibration_text(summary) == "calibration: IXI (118 scans), read on the map of scorer gaussian4mm_atlas_location"
