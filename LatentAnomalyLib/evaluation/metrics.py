"""Evaluation metrics for voxel anomaly heatmaps against ground-truth lesion masks.

Why these metrics: they are the ones reported in the unsupervised anomaly detection literature for brain MRI
(voxel-wise AUROC, AUPRC, best achievable Dice, lesion-wise detection rate, scan-level AUROC), so results can be
compared with published numbers. The "oracle" best Dice picks its threshold with the test labels and is therefore an
optimistic upper bound; it is always meant to be reported next to the Dice at a threshold fixed without labels (for
example a percentile of the scores on healthy validation scans), passed here as ``threshold``.

Implementation: one sort of the scores plus cumulative sums gives the confusion counts at every distinct threshold, so
10^7 voxels take a few seconds and no Python loop runs over voxels. Ties are grouped exactly as scikit-learn does
(``roc_auc_score``, ``average_precision_score``, ``roc_curve``), so values agree with it to rounding error.

Edge-case conventions (never a division by zero, never a RuntimeWarning):

* a ranking metric (AUROC, AUPRC, best Dice, FPR at 95 % recall) is ``None`` when it is undefined: AUROC needs both
  classes, AUPRC / best Dice / FPR at 95 % recall need a positive voxel, the FPR also needs a negative voxel;
* Dice is 1.0 when both prediction and ground truth are empty, else ``2 TP / (|pred| + |truth|)``;
* precision is ``None`` when nothing is predicted, recall ``None`` when there is no positive voxel, FPR ``None`` when
  there is no negative voxel.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import ndimage

__all__ = [
    "dice_at",
    "lesion_metrics",
    "roc_pr_curves",
    "subject_metrics",
    "summarise",
    "voxel_metrics",
]

_STRUCTURE_26 = np.ones((3, 3, 3), dtype=bool)


def _prepare(
    scores: np.ndarray | Sequence[float], labels: np.ndarray | Sequence[bool]
) -> tuple[np.ndarray, np.ndarray]:
    """Flatten and validate: float scores (finite), boolean labels of the same size."""
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(labels).ravel()
    if s.shape != y.shape:
        raise ValueError(f"scores and labels differ in size: {s.size} != {y.size}")
    if not np.all(np.isfinite(s)):
        raise ValueError("scores must be finite (no NaN or inf)")
    return s, y.astype(bool, copy=False)


def _counts(s: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cumulative TP and FP counts at each distinct score, thresholds decreasing (``scores >= t``)."""
    order = np.argsort(s)[::-1]
    s_sorted = s[order]
    y_sorted = y[order]
    # last index of each run of equal scores (the sort is descending)
    last = np.r_[np.flatnonzero(s_sorted[1:] != s_sorted[:-1]), s_sorted.size - 1]
    tps = np.cumsum(y_sorted, dtype=np.int64)[last]
    fps = (last + 1) - tps
    return tps, fps, s_sorted[last]


def _auroc(tps: np.ndarray, fps: np.ndarray) -> float | None:
    """Trapezoidal area under the ROC curve through the distinct thresholds (ties give diagonal segments)."""
    n_pos, n_neg = int(tps[-1]), int(fps[-1])
    if n_pos == 0 or n_neg == 0:
        return None
    tpr = np.r_[0, tps] / n_pos
    fpr = np.r_[0, fps] / n_neg
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1])) / 2.0)


def _average_precision(tps: np.ndarray, fps: np.ndarray) -> float | None:
    """Step-wise average precision, sum of (R_k - R_{k-1}) P_k, as sklearn's ``average_precision_score``."""
    n_pos = int(tps[-1])
    if n_pos == 0:
        return None
    precision = tps / (tps + fps)  # tps + fps >= 1 at every threshold
    recall_step = np.diff(np.r_[0, tps]) / n_pos
    return float(max(0.0, np.sum(recall_step * precision)))


def _dice(tp: int, n_pred: int, n_true: int) -> float:
    return 1.0 if n_pred + n_true == 0 else 2.0 * tp / (n_pred + n_true)


def _threshold_below(thresholds: np.ndarray, k: int) -> float:
    """A value ``t`` with ``scores > t`` selecting exactly the voxels with ``scores >= thresholds[k]``."""
    hi = float(thresholds[k])
    if k + 1 < thresholds.size:
        lo = float(thresholds[k + 1])
        mid = lo + (hi - lo) / 2.0
        return mid if lo <= mid < hi else lo
    return float(np.nextafter(hi, -np.inf))


def dice_at(prediction: np.ndarray, labels: np.ndarray) -> float:
    """Dice overlap of two binary masks; 1.0 when both are empty."""
    p = np.asarray(prediction).astype(bool, copy=False)
    t = np.asarray(labels).astype(bool, copy=False)
    if p.shape != t.shape:
        raise ValueError(f"prediction and labels differ in shape: {p.shape} != {t.shape}")
    return _dice(int(np.count_nonzero(p & t)), int(np.count_nonzero(p)), int(np.count_nonzero(t)))


def voxel_metrics(scores: np.ndarray, labels: np.ndarray, threshold: float | None = None) -> dict[str, float | None]:
    """Voxel-wise metrics of an anomaly heatmap (already restricted to the voxels to evaluate, e.g. brain voxels).

    Keys: ``n_voxels``, ``n_positive``, ``auroc``, ``auprc`` (average precision), ``best_dice`` (oracle: max over all
    thresholds), ``best_dice_threshold`` (a ``t`` such that ``scores > t`` attains it), ``fpr_at_95_recall`` (FPR at the
    highest threshold reaching recall >= 0.95), and when ``threshold`` is given ``dice``, ``precision``, ``recall``,
    ``fpr`` of ``scores > threshold``. See the module docstring for the ``None`` conventions.
    """
    s, y = _prepare(scores, labels)
    n = int(s.size)
    n_pos = int(np.count_nonzero(y))
    n_neg = n - n_pos
    out: dict[str, float | None] = {
        "n_voxels": n,
        "n_positive": n_pos,
        "auroc": None,
        "auprc": None,
        "best_dice": None,
        "best_dice_threshold": None,
        "fpr_at_95_recall": None,
    }
    if n > 0:
        tps, fps, thresholds = _counts(s, y)
        out["auroc"] = _auroc(tps, fps)
        out["auprc"] = _average_precision(tps, fps)
        if n_pos > 0:
            dice = 2.0 * tps / (tps + fps + n_pos)
            k = int(np.argmax(dice))
            out["best_dice"] = float(dice[k])
            out["best_dice_threshold"] = _threshold_below(thresholds, k)
            if n_neg > 0:
                # integer test of tps / n_pos >= 0.95, free of rounding
                k95 = int(np.argmax(tps * 100 >= 95 * n_pos))
                out["fpr_at_95_recall"] = float(fps[k95] / n_neg)
    if threshold is not None:
        pred = s > float(threshold)
        n_pred = int(np.count_nonzero(pred))
        tp = int(np.count_nonzero(pred & y))
        fp = n_pred - tp
        out["dice"] = _dice(tp, n_pred, n_pos)
        out["precision"] = tp / n_pred if n_pred else None
        out["recall"] = tp / n_pos if n_pos else None
        out["fpr"] = fp / n_neg if n_neg else None
    return out


def _downsample_indices(fpr: np.ndarray, tpr: np.ndarray, max_points: int) -> np.ndarray:
    """Indices of at most ``max_points`` curve points spread evenly in FPR and in TPR, endpoints kept."""
    m = fpr.size
    if m <= max_points:
        return np.arange(m)
    grid = np.linspace(0.0, 1.0, max(max_points // 2, 2))
    picks = [np.array([0, m - 1])]
    for axis in (fpr, tpr):
        if np.all(np.isfinite(axis)):  # both are non-decreasing along the curve
            picks.append(np.clip(np.searchsorted(axis, grid), 0, m - 1))
    idx = np.unique(np.concatenate([*picks, np.linspace(0, m - 1, max(max_points // 4, 2)).astype(np.int64)]))
    if idx.size > max_points:
        keep = np.unique(np.linspace(0, idx.size - 1, max_points).round().astype(np.int64))
        idx = idx[keep]
    return idx


def roc_pr_curves(scores: np.ndarray, labels: np.ndarray, max_points: int = 400) -> dict[str, np.ndarray]:
    """ROC and precision-recall curves for plotting, at most ``max_points`` points, first and last kept.

    All five arrays are aligned and ordered by decreasing threshold; the first point is the empty prediction
    (``thresholds`` = +inf, fpr = tpr = recall = 0, precision = 1, as in sklearn). Rates with a zero denominator
    (TPR / recall without positives, FPR without negatives) are NaN.
    """
    if max_points < 2:
        raise ValueError("max_points must be at least 2")
    s, y = _prepare(scores, labels)
    if s.size == 0:
        raise ValueError("no voxels to build curves from")
    tps, fps, thresholds = _counts(s, y)
    n_pos, n_neg = int(tps[-1]), int(fps[-1])
    tps = np.r_[0, tps].astype(np.float64)
    fps = np.r_[0, fps].astype(np.float64)
    tpr = tps / n_pos if n_pos else np.full_like(tps, np.nan)
    fpr = fps / n_neg if n_neg else np.full_like(fps, np.nan)
    precision = np.ones_like(tps)
    precision[1:] = tps[1:] / (tps[1:] + fps[1:])
    idx = _downsample_indices(fpr, tpr, max_points)
    return {
        "fpr": fpr[idx],
        "tpr": tpr[idx],
        "precision": precision[idx],
        "recall": tpr[idx].copy(),
        "thresholds": np.r_[np.inf, thresholds][idx],
    }


def lesion_metrics(
    prediction: np.ndarray,
    labels: np.ndarray,
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0),
    min_lesion_ml: float = 0.0,
    min_overlap_voxels: int = 1,
) -> dict[str, Any]:
    """Lesion-wise detection with 3D connected components (26-connectivity).

    A ground-truth lesion (component of ``labels`` with volume >= ``min_lesion_ml``; smaller ones are ignored) is
    detected when at least ``min_overlap_voxels`` of its voxels are predicted. A predicted component touching no
    ground-truth voxel is a false-positive component. ``spacing`` is the voxel size in mm (1 mL = 1000 mm³).
    ``sensitivity`` is ``None`` when no lesion is counted.
    """
    pred = np.asarray(prediction).astype(bool, copy=False)
    truth = np.asarray(labels).astype(bool, copy=False)
    if pred.shape != truth.shape or pred.ndim != 3:
        raise ValueError(f"prediction and labels must be 3D arrays of one shape, got {pred.shape} and {truth.shape}")
    if min_overlap_voxels < 1:
        raise ValueError("min_overlap_voxels must be at least 1")
    voxel_ml = float(np.prod(np.asarray(spacing, dtype=np.float64))) / 1000.0

    gt_lab, n_gt = ndimage.label(truth, structure=_STRUCTURE_26)
    sizes = np.bincount(gt_lab.ravel(), minlength=n_gt + 1)[1:]
    overlap = np.bincount(gt_lab[pred], minlength=n_gt + 1)[1:]
    volumes = sizes * voxel_ml
    counted = volumes >= min_lesion_ml
    detected = (overlap >= min_overlap_voxels)[counted]

    pred_lab, n_pred = ndimage.label(pred, structure=_STRUCTURE_26)
    touched = np.bincount(pred_lab[truth], minlength=n_pred + 1)[1:]
    n_lesions = int(np.count_nonzero(counted))
    n_detected = int(np.count_nonzero(detected))
    return {
        "n_lesions": n_lesions,
        "n_detected": n_detected,
        "n_missed": n_lesions - n_detected,
        "sensitivity": n_detected / n_lesions if n_lesions else None,
        "n_false_positive_components": int(np.count_nonzero(touched == 0)),
        "n_predicted_components": int(n_pred),
        "lesion_volumes_ml": [float(v) for v in volumes[counted]],
        "detected": [bool(d) for d in detected],
    }


def subject_metrics(scores: Sequence[float], is_lesion: Sequence[bool]) -> dict[str, Any]:
    """Scan-level AUROC and average precision of one score per scan, lesion scans positive.

    Both are ``None`` unless healthy and lesion scans are both present.
    """
    s, y = _prepare(scores, is_lesion)
    n_lesion = int(np.count_nonzero(y))
    n_healthy = int(s.size) - n_lesion
    auroc = ap = None
    if n_lesion and n_healthy:
        tps, fps, _ = _counts(s, y)
        auroc, ap = _auroc(tps, fps), _average_precision(tps, fps)
    return {"auroc": auroc, "average_precision": ap, "n_healthy": n_healthy, "n_lesion": n_lesion}


def summarise(values: Sequence[float | None]) -> dict[str, float | None]:
    """Mean, sample standard deviation (ddof=1; 0.0 for a single value), median, min, max and count of the
    non-``None`` values; every statistic is ``None`` (and ``n`` 0) when there are none.
    """
    v = np.asarray([float(x) for x in values if x is not None], dtype=np.float64)
    if v.size == 0:
        return {"mean": None, "std": None, "median": None, "min": None, "max": None, "n": 0}
    return {
        "mean": float(np.mean(v)),
        "std": float(np.std(v, ddof=1)) if v.size > 1 else 0.0,
        "median": float(np.median(v)),
        "min": float(np.min(v)),
        "max": float(np.max(v)),
        "n": int(v.size),
    }
