"""Compare the detection with a ground-truth segmentation the user picked: Dice, AUROC and AUPRC.

Researchers load a scan with a known lesion and want to see at once how well the heatmap ranks the
lesion voxels (AUROC, AUPRC: threshold-free) and how well the label map on screen overlaps it (Dice:
changes with the threshold slider). The numbers come from ``LatentAnomalyLib.evaluation.metrics``, the functions
the library's evaluation uses, so the module and ``latent-anomaly evaluate`` agree. Ranking metrics
are computed inside the brain only, as in the evaluation: the heatmap is exactly 0 outside the brain
mask, so without an explicit mask the brain is taken as the heatmap's non-zero voxels (every voxel if
the heatmap has none). Plain numpy (+ SimpleITK for resampling): tested without Slicer.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def brain_mask_from_heatmap(heatmap: np.ndarray) -> np.ndarray:
    """Voxels where the heatmap is non-zero (the CLI writes exactly 0 outside the brain); all if none is."""
    mask = np.asarray(heatmap) != 0
    return mask if mask.any() else np.ones(mask.shape, dtype=bool)


def ground_truth_metrics(
    heatmap: np.ndarray, labels: np.ndarray, truth: np.ndarray, brain: np.ndarray | None = None
) -> dict[str, Any]:
    """Dice of ``labels`` vs ``truth`` and voxel AUROC/AUPRC of ``heatmap`` vs ``truth`` inside ``brain``.

    All arrays share one grid (any non-zero truth or label value counts as positive). Keys: ``dice``,
    ``auroc``, ``auprc`` (None where undefined, e.g. no lesion voxel in the brain), ``n_brain_voxels``,
    ``n_truth_voxels`` (inside the brain), ``truth_outside_brain`` (lesion voxels the heatmap cannot score).
    """
    from LatentAnomalyLib.evaluation.metrics import dice_at, voxel_metrics

    heatmap = np.asarray(heatmap)
    truth_mask = np.asarray(truth) != 0
    label_mask = np.asarray(labels) != 0
    for name, array in (("label map", label_mask), ("ground truth", truth_mask)):
        if array.shape != heatmap.shape:
            raise ValueError(f"the {name} grid {array.shape} differs from the heatmap grid {heatmap.shape}")
    brain = brain_mask_from_heatmap(heatmap) if brain is None else np.asarray(brain) != 0
    if brain.shape != heatmap.shape:
        raise ValueError(f"the brain mask grid {brain.shape} differs from the heatmap grid {heatmap.shape}")
    ranking = voxel_metrics(heatmap[brain], truth_mask[brain])
    return {
        "dice": dice_at(label_mask, truth_mask),
        "auroc": ranking["auroc"],
        "auprc": ranking["auprc"],
        "n_brain_voxels": int(ranking["n_voxels"] or 0),
        "n_truth_voxels": int(ranking["n_positive"] or 0),
        "truth_outside_brain": int(np.count_nonzero(truth_mask & ~brain)),
    }


def _value(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def format_ground_truth_metrics(metrics: dict[str, Any]) -> str:
    """One line for the panel, plus a warning when part of the lesion lies outside the scored brain."""
    text = f"Dice {_value(metrics.get('dice'))}   AUROC {_value(metrics.get('auroc'))}   AUPRC {_value(metrics.get('auprc'))}"
    if not metrics.get("n_truth_voxels"):
        text += "\n(no ground-truth voxel inside the brain: AUROC and AUPRC are undefined)"
    outside = int(metrics.get("truth_outside_brain") or 0)
    if outside:
        text += f"\n({outside} ground-truth voxels lie outside the brain and are not ranked)"
    return text


def resample_like(image: Any, reference: Any) -> Any:
    """``image`` (a SimpleITK label image) on ``reference``'s grid, nearest neighbour, 0 outside.

    A ground truth drawn on another grid (another series, a cropped volume) is compared in physical
    space; a label map already on the grid comes back unchanged.
    """
    import SimpleITK as sitk

    same = (
        image.GetSize() == reference.GetSize()
        and np.allclose(image.GetSpacing(), reference.GetSpacing(), atol=1e-5)
        and np.allclose(image.GetOrigin(), reference.GetOrigin(), atol=1e-4)
        and np.allclose(image.GetDirection(), reference.GetDirection(), atol=1e-5)
    )
    if same:
        return image
    return sitk.Resample(image, reference, sitk.Transform(), sitk.sitkNearestNeighbor, 0, image.GetPixelID())
