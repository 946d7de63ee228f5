"""Slicer module without Slicer: ground-truth metrics (the library's functions), their text, and resampling a ground truth onto the heatmap grid."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from tests.gui.test_slicer_review import _heatmap_image
from tests.slicer_gui import (
    ground_truth,
)


def _lesion_case():
    heatmap = np.zeros((6, 8, 8), dtype=np.float32)
    heatmap[1:5, 1:7, 1:7] = 0.1  # brain: 144 voxels, non-zero scores
    heatmap[2:4, 2:4, 2:4] = 2.0  # lesion scores high (8 voxels)
    truth = np.zeros(heatmap.shape, dtype=np.uint8)
    truth[2:4, 2:4, 2:4] = 1
    return heatmap, truth


def test_ground_truth_metrics_perfect_and_partial():
    heatmap, truth = _lesion_case()
    labels = (heatmap > 1.0).astype(np.uint8)
    metrics = ground_truth.ground_truth_metrics(heatmap, labels, truth)
    assert metrics == {
        "dice": 1.0,
        "auroc": 1.0,
        "auprc": 1.0,
        "n_brain_voxels": 144,
        "n_truth_voxels": 8,
        "truth_outside_brain": 0,
    }
    half = labels.copy()
    half[2] = 0  # 4 of the 8 lesion voxels flagged
    assert ground_truth.ground_truth_metrics(heatmap, half, truth)["dice"] == pytest.approx(2 * 4 / (4 + 8))
    truth_with_outside = truth.copy()
    truth_with_outside[0, 0, 0] = 7  # any non-zero value is lesion; this voxel is outside the brain
    metrics = ground_truth.ground_truth_metrics(heatmap, labels, truth_with_outside)
    assert metrics["truth_outside_brain"] == 1 and metrics["n_truth_voxels"] == 8 and metrics["auroc"] == 1.0


def test_ground_truth_metrics_agree_with_sklearn_inside_the_brain():
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(3)
    heatmap = np.zeros((10, 12, 12), dtype=np.float32)
    brain = np.zeros(heatmap.shape, dtype=bool)
    brain[1:9, 2:10, 2:10] = True
    truth = np.zeros(heatmap.shape, dtype=np.uint8)
    truth[3:6, 4:7, 4:8] = 1
    heatmap[brain] = rng.normal(0.0, 1.0, int(brain.sum())) + 1.5 * truth[brain]
    labels = (heatmap > 1.0).astype(np.uint8)
    metrics = ground_truth.ground_truth_metrics(heatmap, labels, truth, brain=brain)
    assert metrics["auroc"] == pytest.approx(sklearn_metrics.roc_auc_score(truth[brain], heatmap[brain]))
    assert metrics["auprc"] == pytest.approx(sklearn_metrics.average_precision_score(truth[brain], heatmap[brain]))
    expected_dice = 2 * np.sum(labels & truth) / (labels.sum() + truth.sum())
    assert metrics["dice"] == pytest.approx(expected_dice)
    assert metrics["n_brain_voxels"] == int(brain.sum())


def test_ground_truth_metrics_edge_cases():
    heatmap, truth = _lesion_case()
    empty = np.zeros_like(truth)
    metrics = ground_truth.ground_truth_metrics(heatmap, empty, empty)
    assert metrics["dice"] == 1.0 and metrics["auroc"] is None and metrics["auprc"] is None
    assert "undefined" in ground_truth.format_ground_truth_metrics(metrics)
    with pytest.raises(ValueError, match="ground truth grid"):
        ground_truth.ground_truth_metrics(heatmap, empty, truth[:-1])
    with pytest.raises(ValueError, match="label map grid"):
        ground_truth.ground_truth_metrics(heatmap, empty[:, :-1], truth)
    assert ground_truth.brain_mask_from_heatmap(np.zeros((2, 2, 2))).all()  # no brain found: every voxel


def test_format_ground_truth_metrics():
    text = ground_truth.format_ground_truth_metrics(
        {"dice": 0.5, "auroc": 0.91234, "auprc": None, "n_truth_voxels": 3, "truth_outside_brain": 2}
    )
    assert text.splitlines() == [
        "Dice 0.500   AUROC 0.912   AUPRC n/a",
        "(2 ground-truth voxels lie outside the brain and are not ranked)",
    ]


def test_resample_like_puts_a_ground_truth_on_the_heatmap_grid():
    reference = _heatmap_image()  # 2 mm voxels
    assert ground_truth.resample_like(reference, reference) is reference
    fine = np.zeros((40, 48, 44), dtype=np.uint8)  # the same field of view at 1 mm
    fine[8:18, 10:20, 10:20] = 1  # reference voxel i sits on fine voxel 2i: this covers [4:9, 5:10, 5:10]
    image = sitk.GetImageFromArray(fine)
    image.SetSpacing((1.0, 1.0, 1.0))
    image.SetOrigin(reference.GetOrigin())
    resampled = ground_truth.resample_like(image, reference)
    assert resampled.GetSize() == reference.GetSize() and resampled.GetPixelID() == image.GetPixelID()
    array = sitk.GetArrayFromImage(resampled)
    expected = np.zeros(array.shape, dtype=np.uint8)
    expected[4:9, 5:10, 5:10] = 1
    assert np.array_equal(array, expected)
