"""Change the voxel threshold after detection without running the model again.

The heatmap is what the model computed; the label map is only ``heatmap > threshold`` minus small
components. Users want to move the threshold and watch the flagged region change, so the module
recomputes the label map from the loaded heatmap with the library's own ``label_components``
(the function the CLI uses: same comparison, same 26-connectivity, same minimum region size),
which needs numpy, scipy and SimpleITK but not torch.
"""

from __future__ import annotations

import copy
import os
from typing import Any

from LatentAnomalyLib.outputs.focus import same_region  # same volume and RAS centroid, as detect rounds them

DEFAULT_MIN_COMPONENT_ML = 0.1  # the pipeline's default when the calibration does not say
SOURCE_SLICER = "re-thresholded in Slicer"


def min_component_ml(model_dir: str | os.PathLike[str] | None, scorer: str | None) -> float:
    """The smallest region (mL) the bundle's calibration keeps for ``scorer``, read by the library from the
    verified bundle (either format); the default if the model or scorer is unknown or the bundle unusable."""
    if model_dir is None or not scorer:
        return DEFAULT_MIN_COMPONENT_ML
    from LatentAnomalyLib.bundle.contents import min_component_ml as bundle_min_component_ml

    return bundle_min_component_ml(model_dir, scorer)


def relabel(image: Any, threshold: float, min_ml: float, ids: bool = False) -> tuple[Any, list[dict[str, Any]]]:
    """(uint8 label array in (k, j, i) order, components) of a heatmap ``SimpleITK.Image`` at ``threshold``; with
    ``ids`` the array holds each component's ``id`` (as ``label_components``)."""
    import SimpleITK as sitk

    from LatentAnomalyLib.score.components import label_components

    heatmap = sitk.GetArrayFromImage(image)
    return label_components(heatmap, float(threshold), image, float(min_ml), ids=ids)


def calibrated_subset(summary: dict[str, Any], threshold: float, ids: Any, components: list[dict[str, Any]]) -> Any:
    """The label array (uint8) and components to show at ``threshold``: every component, except back at the
    detected threshold of a calibrated label map (models 1.5.0 and later, ``regions`` "calibrated"), where only the
    regions detect kept (by the bundle's rule: p <= alpha, or every region of a flagged scan; matched as in
    :func:`summary_after_rethreshold`) are, as in detect's label map."""
    import numpy as np

    detected = summary.get("detected_voxel_threshold", summary.get("voxel_threshold"))
    if summary.get("regions") != "calibrated" or detected is None or float(threshold) != float(detected):
        return (np.asarray(ids) > 0).astype(np.uint8), components
    known = summary.get("detected_components", summary.get("components")) or []
    kept = [c for c in components if any(same_region(c, k) for k in known)]
    labels = np.isin(ids, [c["id"] for c in kept]).astype(np.uint8)
    return labels, [{**c, "id": number} for number, c in enumerate(kept, start=1)]


def voxel_volume_ml(spacing: Any) -> float:
    volume = 1.0
    for step in spacing:
        volume *= float(step)
    return volume / 1000.0


def summary_after_rethreshold(
    summary: dict[str, Any], threshold: float, labels: Any, components: list[dict[str, Any]], voxel_ml: float
) -> dict[str, Any]:
    """A copy of ``summary`` describing the new label map; the subject score and its threshold do not change.

    The threshold the CLI used is kept as ``detected_voxel_threshold`` so the user can go back to it, and its
    regions as ``detected_components``. The recomputed regions have no p-value (the region calibration holds at
    the calibrated voxel threshold only), except back at the detected threshold, where each region gets the
    p-value detect wrote for it (in ``detected_components`` or ``regions_not_kept``).
    """
    out = copy.deepcopy(summary)
    out.setdefault("detected_voxel_threshold", summary.get("voxel_threshold"))
    out.setdefault("detected_voxel_threshold_source", summary.get("voxel_threshold_source", ""))
    out.setdefault("detected_components", copy.deepcopy(summary.get("components") or []))
    out["voxel_threshold"] = float(threshold)
    back_to_detected = out["detected_voxel_threshold"] is not None and float(threshold) == float(
        out["detected_voxel_threshold"]
    )
    out["voxel_threshold_source"] = out["detected_voxel_threshold_source"] if back_to_detected else SOURCE_SLICER
    flagged_ml = float((labels > 0).sum()) * float(voxel_ml)
    out["flagged_volume_ml"] = flagged_ml
    brain_ml = summary.get("brain_volume_ml")
    if isinstance(brain_ml, int | float) and brain_ml > 0:
        out["flagged_fraction_of_brain"] = flagged_ml / float(brain_ml)
    out["n_components"] = len(components)
    known = [*out["detected_components"], *(out.get("regions_not_kept") or [])] if back_to_detected else []
    out["components"] = [_with_p_value(c, known) for c in components]
    return out


def _with_p_value(component: dict[str, Any], known: list[dict[str, Any]]) -> dict[str, Any]:
    """``component`` with the p-value fields of the same region in ``known`` (unchanged when none has one)."""
    match = next((k for k in known if "p_value" in k and same_region(component, k)), None)
    if match is None:
        return component
    fields = ("region_statistic", "p_value", "p_value_at_most_alpha")
    return {**component, **{key: match[key] for key in fields if key in match}}
