"""Tests of LatentAnomalyLib.evaluation.metrics: agreement with scikit-learn, edge cases, lesion components, speed."""

from __future__ import annotations

import time
import warnings

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

from LatentAnomalyLib.evaluation.metrics import (
    dice_at,
    lesion_metrics,
    roc_pr_curves,
    subject_metrics,
    summarise,
    voxel_metrics,
)

SEEDS = [0, 1, 2, 3, 4]


def _random_case(seed: int, n: int = 5000, decimals: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.random(n) < rng.uniform(0.02, 0.4)
    scores = rng.normal(size=n) + 1.2 * labels
    if decimals is not None:
        scores = np.round(scores, decimals)
    return scores, labels


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("decimals", [None, 1, 0])
def test_auroc_auprc_match_sklearn(seed: int, decimals: int | None) -> None:
    scores, labels = _random_case(seed, decimals=decimals)
    m = voxel_metrics(scores.reshape(50, 100), labels.reshape(50, 100))
    assert m["n_voxels"] == labels.size
    assert m["n_positive"] == int(labels.sum())
    assert m["auroc"] == pytest.approx(roc_auc_score(labels, scores), abs=1e-9)
    assert m["auprc"] == pytest.approx(average_precision_score(labels, scores), abs=1e-9)


@pytest.mark.parametrize("seed", SEEDS)
def test_fpr_at_95_recall_matches_sklearn_roc_curve(seed: int) -> None:
    scores, labels = _random_case(seed, decimals=1)
    fpr, tpr, _ = roc_curve(labels, scores, drop_intermediate=False)
    expected = fpr[np.argmax(tpr >= 0.95)]
    assert voxel_metrics(scores, labels)["fpr_at_95_recall"] == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_curves_match_sklearn_roc_curve(seed: int) -> None:
    scores, labels = _random_case(seed, n=3000, decimals=2)
    fpr, tpr, thr = roc_curve(labels, scores, drop_intermediate=False)
    c = roc_pr_curves(scores, labels, max_points=10**6)
    np.testing.assert_allclose(c["fpr"], fpr, atol=1e-12)
    np.testing.assert_allclose(c["tpr"], tpr, atol=1e-12)
    np.testing.assert_array_equal(c["thresholds"][1:], thr[1:])
    assert c["precision"][0] == 1.0 and c["recall"][0] == 0.0
    # area of the full curve is the AUROC
    assert np.trapezoid(c["tpr"], c["fpr"]) == pytest.approx(roc_auc_score(labels, scores), abs=1e-9)


def test_curves_downsampled_keep_endpoints() -> None:
    scores, labels = _random_case(7, n=50_000)
    full = roc_pr_curves(scores, labels, max_points=10**7)
    c = roc_pr_curves(scores, labels, max_points=300)
    for key in ("fpr", "tpr", "precision", "recall", "thresholds"):
        assert 2 <= c[key].size <= 300
        assert c[key][0] == full[key][0] and c[key][-1] == full[key][-1]
    assert np.all(np.diff(c["fpr"]) >= 0) and np.all(np.diff(c["tpr"]) >= 0)
    assert c["tpr"][-1] == 1.0 and c["fpr"][-1] == 1.0


def test_dice_precision_recall_at_threshold_by_hand() -> None:
    scores = np.array([0.9, 0.8, 0.7, 0.5, 0.5, 0.3, 0.2, 0.1])
    labels = np.array([1, 1, 0, 1, 0, 0, 1, 0], dtype=bool)
    m = voxel_metrics(scores, labels, threshold=0.5)  # strictly greater: predicts the first three
    tp, fp, fn = 2, 1, 2
    assert m["dice"] == pytest.approx(2 * tp / (2 * tp + fp + fn))
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["recall"] == pytest.approx(2 / 4)
    assert m["fpr"] == pytest.approx(1 / 4)
    assert dice_at(scores > 0.5, labels) == pytest.approx(m["dice"])


@pytest.mark.parametrize("seed", SEEDS)
def test_best_dice_equals_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    labels = rng.random(300) < 0.2
    scores = np.round(rng.normal(size=300) + labels, 1)
    candidates = np.r_[np.unique(scores), scores.min() - 1.0]
    brute = max(dice_at(scores > t, labels) for t in candidates)
    m = voxel_metrics(scores, labels)
    assert m["best_dice"] == pytest.approx(brute, abs=1e-12)
    # the reported threshold reproduces the best Dice with the strict ">" convention
    assert dice_at(scores > m["best_dice_threshold"], labels) == pytest.approx(m["best_dice"], abs=1e-12)
    at = voxel_metrics(scores, labels, threshold=m["best_dice_threshold"])
    assert at["dice"] == pytest.approx(m["best_dice"], abs=1e-12)


def test_best_dice_perfect_separation() -> None:
    labels = np.array([0, 0, 1, 1, 0], dtype=bool)
    scores = np.array([0.1, 0.2, 0.9, 0.8, 0.3])
    m = voxel_metrics(scores, labels)
    assert m["best_dice"] == 1.0 and m["auroc"] == 1.0 and m["auprc"] == 1.0
    assert 0.3 <= m["best_dice_threshold"] < 0.8
    assert m["fpr_at_95_recall"] == 0.0


def test_empty_ground_truth_no_warning() -> None:
    scores = np.linspace(0, 1, 100)
    labels = np.zeros(100, dtype=bool)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = voxel_metrics(scores, labels, threshold=0.5)
        m_empty = voxel_metrics(scores, labels, threshold=2.0)
    for key in ("auroc", "auprc", "best_dice", "best_dice_threshold", "fpr_at_95_recall", "recall"):
        assert m[key] is None
    assert m["dice"] == 0.0 and m["precision"] == 0.0 and m["fpr"] == pytest.approx(0.5)
    assert m_empty["dice"] == 1.0 and m_empty["precision"] is None and m_empty["fpr"] == 0.0


def test_empty_prediction_and_all_positive_no_warning() -> None:
    scores = np.array([0.1, 0.2, 0.3, 0.4])
    labels = np.array([0, 1, 0, 1], dtype=bool)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = voxel_metrics(scores, labels, threshold=1.0)
        all_pos = voxel_metrics(scores, np.ones(4, dtype=bool), threshold=0.25)
        none = voxel_metrics(np.array([]), np.array([], dtype=bool), threshold=0.0)
        curves = roc_pr_curves(scores, np.zeros(4, dtype=bool))
    assert m["dice"] == 0.0 and m["precision"] is None and m["recall"] == 0.0 and m["fpr"] == 0.0
    assert all_pos["auroc"] is None and all_pos["fpr_at_95_recall"] is None
    assert all_pos["auprc"] == pytest.approx(1.0) and all_pos["best_dice"] == 1.0
    assert all_pos["fpr"] is None and all_pos["recall"] == 0.5 and all_pos["precision"] == 1.0
    assert none["n_voxels"] == 0 and none["auroc"] is None and none["dice"] == 1.0
    assert np.all(np.isnan(curves["tpr"]))
    assert dice_at(np.zeros((2, 3)), np.zeros((2, 3))) == 1.0


def test_constant_scores() -> None:
    labels = np.array([0, 1, 0, 0, 1, 0], dtype=bool)
    m = voxel_metrics(np.full(6, 0.7), labels)
    assert m["auroc"] == 0.5
    assert m["auprc"] == pytest.approx(2 / 6)
    assert m["best_dice"] == pytest.approx(2 * 2 / (6 + 2))
    assert m["fpr_at_95_recall"] == 1.0
    assert m["best_dice_threshold"] < 0.7


def test_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        voxel_metrics(np.zeros(3), np.zeros(4, dtype=bool))
    with pytest.raises(ValueError):
        voxel_metrics(np.array([0.0, np.nan]), np.array([0, 1], dtype=bool))


def test_lesion_metrics_hand_built() -> None:
    labels = np.zeros((20, 20, 20), dtype=bool)
    labels[2:5, 2:5, 2:5] = True  # lesion A, 27 voxels, detected
    labels[10, 10, 10] = True  # lesion B: two voxels touching only at a corner (one 26-component)
    labels[11, 11, 11] = True
    labels[15:17, 2:4, 15:17] = True  # lesion C, 8 voxels, missed
    pred = np.zeros_like(labels)
    pred[3:6, 3:6, 3:6] = True  # overlaps A
    pred[11, 11, 11] = True  # overlaps B by one voxel
    pred[16, 16, 16] = True  # false positive, diagonally joined to the next voxel
    pred[17, 17, 17] = True
    m = lesion_metrics(pred, labels, spacing=(2.0, 1.0, 1.0))
    assert m["n_lesions"] == 3
    assert m["n_detected"] == 2 and m["n_missed"] == 1
    assert m["sensitivity"] == pytest.approx(2 / 3)
    assert m["n_predicted_components"] == 3
    assert m["n_false_positive_components"] == 1
    assert m["lesion_volumes_ml"] == pytest.approx([0.054, 0.004, 0.016])
    assert m["detected"] == [True, True, False]

    # a size cut-off drops lesion B, an overlap requirement of 2 voxels misses it
    small_cut = lesion_metrics(pred, labels, spacing=(2.0, 1.0, 1.0), min_lesion_ml=0.005)
    assert small_cut["n_lesions"] == 2 and small_cut["detected"] == [True, False]
    strict = lesion_metrics(pred, labels, min_overlap_voxels=2)
    assert strict["detected"] == [True, False, False]


def test_lesion_metrics_empty() -> None:
    empty = np.zeros((5, 5, 5), dtype=bool)
    m = lesion_metrics(empty, empty)
    assert m["n_lesions"] == 0 and m["sensitivity"] is None
    assert m["n_predicted_components"] == 0 and m["lesion_volumes_ml"] == [] and m["detected"] == []


@pytest.mark.parametrize("seed", SEEDS)
def test_subject_metrics_match_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    is_lesion = rng.random(40) < 0.5
    scores = np.round(rng.normal(size=40) + is_lesion, 1)
    m = subject_metrics(list(scores), list(is_lesion))
    assert m["auroc"] == pytest.approx(roc_auc_score(is_lesion, scores), abs=1e-9)
    assert m["average_precision"] == pytest.approx(average_precision_score(is_lesion, scores), abs=1e-9)
    assert m["n_lesion"] == int(is_lesion.sum()) and m["n_healthy"] == 40 - int(is_lesion.sum())


def test_subject_metrics_one_class() -> None:
    m = subject_metrics([0.1, 0.5], [False, False])
    assert m["auroc"] is None and m["average_precision"] is None and m["n_healthy"] == 2


def test_summarise() -> None:
    s = summarise([1.0, None, 3.0, 2.0])
    assert s["n"] == 3 and s["mean"] == 2.0 and s["median"] == 2.0
    assert s["std"] == pytest.approx(1.0) and s["min"] == 1.0 and s["max"] == 3.0
    assert summarise([None])["mean"] is None and summarise([])["n"] == 0
    assert summarise([4.0])["std"] == 0.0


@pytest.mark.slow
def test_ten_million_voxels_fast() -> None:
    rng = np.random.default_rng(0)
    n = 10**7
    labels = rng.random(n) < 0.01
    scores = (rng.normal(size=n) + 2.0 * labels).astype(np.float32)
    start = time.perf_counter()
    m = voxel_metrics(scores, labels, threshold=2.0)
    elapsed = time.perf_counter() - start
    print(f"voxel_metrics on 1e7 voxels: {elapsed:.2f} s")
    assert elapsed < 10.0
    assert 0.9 < m["auroc"] < 0.95
