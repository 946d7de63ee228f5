"""Is this the kind of scan the model was trained on? Tissue contrast and brain coverage after preprocessing.

Why: a T2, PD or FLAIR scan (or an inverted one) given to a T1 model is not an anomaly, yet every
tissue would score as one. After registration the template says where white matter (WM), grey
matter (GM) and CSF are, so their median intensities in the scan can be compared with the order a
T1-weighted scan has: CSF < GM < WM. Measured on the data here (``docs/clinical-inputs.md``):
T1 scans (IXI, other sites, BraTS T1) have CSF/WM 0.28-0.63 and GM/WM 0.68-0.96; T2 scans CSF/WM up
to 1.3 with GM brighter than WM; FLAIR GM/WM 0.88-1.12. A scan whose CSF is as bright as its white
matter (CSF/WM >= 0.9) while WM stays brighter than GM is refused; GM/WM >= 0.93 gives a warning
(FLAIR, or a low-contrast old T1), and so does an image without any tissue contrast (a phantom).
GM brighter than WM is refused earlier, by the normalisation. Contrast-enhanced T1 keeps the T1
order and is not told apart here.

Coverage: the share of the template brain that lies inside the scan's field of view. Below 80%
detection is refused, naming the missing side; below 97% a warning names it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import SimpleITK as sitk

from ..errors import InputError

CSF_WM_REFUSE = 0.9
GM_WM_WARN = 0.93
FLAT_GM_WM = 0.97  # with CSF as bright as WM too: no tissue contrast at all (a phantom, not a head)
COVERAGE_REFUSE = 0.80
COVERAGE_WARN = 0.97
SIDES = (("right", "left"), ("anterior", "posterior"), ("inferior", "superior"))  # model grid axes x, y, z (LPS)

__all__ = ["brain_coverage", "check_input_kind", "cropped_side", "explain_failure", "model_sequence", "tissue_contrast"]


def model_sequence(config: dict[str, Any]) -> str:
    """The MR sequence a bundle was trained on (``sequence`` or ``modality`` in its config; "T1" if absent)."""
    return str(config.get("sequence") or config.get("modality") or "T1")


def tissue_contrast(pre: Any, template: Any) -> dict[str, float]:
    """Median intensities of CSF and GM relative to WM, in the scan's own intensity scale.

    ``pre.image`` is normalised linearly (``raw * scale + offset``), so the raw medians come back
    exactly from the preprocessing's ``scale`` and ``offset``.
    """
    scale, offset = float(pre.info.get("scale", 1.0)), float(pre.info.get("offset", 0.0))
    inside = pre.mask & template.mask

    def raw_median(select: np.ndarray) -> float:
        values = pre.image[inside & select]
        return (float(np.median(values)) - offset) / scale if values.size >= 100 else float("nan")

    wm = raw_median(template.wm >= 0.9)
    gm = raw_median(template.gm >= 0.7)
    csf = raw_median((template.gm < 0.1) & (template.wm < 0.1))
    return {"gm_to_wm": gm / wm if wm > 0 else float("nan"), "csf_to_wm": csf / wm if wm > 0 else float("nan")}


def brain_coverage(pre: Any, template: Any, grid: Any) -> tuple[float, str]:
    """Share of the template brain inside the scan's field of view, and the side that is missing most."""
    field = sitk.Image(pre.native.GetSize(), sitk.sitkFloat32) + 1.0
    field.CopyInformation(pre.native)
    from .geometry import resample

    inside = sitk.GetArrayFromImage(resample(field, grid.image(), pre.transform, antialias=False)) >= 0.5
    brain = template.mask
    coverage = float(inside[brain].mean()) if brain.any() else 1.0
    missing = brain & ~inside
    if not missing.any():
        return coverage, ""
    shift = np.argwhere(missing).mean(axis=0) - np.argwhere(brain).mean(axis=0)  # (z, y, x)
    axis = int(np.argmax(np.abs(shift)))
    side = SIDES[2 - axis][1 if shift[axis] > 0 else 0]
    return coverage, side


LPS_NAMES = (("right", "left"), ("anterior", "posterior"), ("inferior", "superior"))  # -/+ physical x, y, z
EDGE_FRACTION = 0.3  # brain cut by a face: its section there is this share of the largest section


def cropped_side(image: sitk.Image, mask: np.ndarray) -> str:
    """The anatomical side where the brain mask runs into the edge of the field of view ("" if none)."""
    if not mask.any():
        return ""
    direction = np.asarray(image.GetDirection()).reshape(3, 3)
    worst, side = 0.0, ""
    for array_axis in range(3):
        index_axis = 2 - array_axis  # arrays are (z, y, x)
        sections = mask.sum(axis=tuple(a for a in range(3) if a != array_axis))
        largest = float(sections.max())
        for end, count in ((0, sections[:2].max()), (1, sections[-2:].max())):
            share = float(count) / largest
            if share > max(worst, EDGE_FRACTION):
                vector = direction[:, index_axis] * (1 if end else -1)
                physical = int(np.argmax(np.abs(vector)))
                worst, side = share, LPS_NAMES[physical][int(vector[physical] > 0)]
    return side


def explain_failure(error: InputError, detector: Any, image: sitk.Image, skull: str) -> InputError:
    """A failed registration on a cropped scan: say which part of the brain is missing instead of guessing."""
    if "registration" not in str(error):
        return error
    try:
        from .intensity_screen import screen_intensities

        mask, _ = detector.preprocessor.brain_mask(screen_intensities(image)[0], skull)
    except Exception:  # the original reason stands
        return error
    side = cropped_side(image, mask)
    if not side:
        return error
    return InputError(
        f"{error} The brain runs into the {side} edge of the field of view: the scan is cropped and the part of "
        f"the brain beyond it is missing; give a scan covering the whole brain"
    )


def check_input_kind(pre: Any, model: Any) -> tuple[dict[str, Any], list[str]]:
    """Measures for summary.json and warnings; raise ``InputError`` for a scan the model cannot judge."""
    sequence = model_sequence(model.config)
    coverage, side = brain_coverage(pre, model.template, model.preprocess.grid)
    measures: dict[str, Any] = {"model_sequence": sequence, "brain_coverage": round(coverage, 4)}
    warnings = []
    edge = cropped_side(pre.native, pre.native_mask)
    if edge:
        warnings.append(f"the brain runs into the {edge} edge of the field of view: part of it may be cut off")
    if coverage < COVERAGE_REFUSE:
        raise InputError(
            f"the field of view holds only {100 * coverage:.0f}% of the brain (the {side} part is missing); "
            f"at least {100 * COVERAGE_REFUSE:.0f}% is needed: give a scan covering the whole head"
        )
    if coverage < COVERAGE_WARN:
        warnings.append(
            f"the field of view holds {100 * coverage:.0f}% of the brain (the {side} part is cut off); "
            "nothing is reported there"
        )
    if sequence.upper() != "T1":
        return measures, warnings  # the contrast rules below describe T1-weighted scans
    contrast = tissue_contrast(pre, model.template)
    measures.update({k: round(v, 3) for k, v in contrast.items()})
    if contrast["csf_to_wm"] >= CSF_WM_REFUSE and contrast["gm_to_wm"] >= FLAT_GM_WM:
        warnings.append(
            f"CSF, grey and white matter have about the same intensity (CSF/WM {contrast['csf_to_wm']:.2f}, GM/WM "
            f"{contrast['gm_to_wm']:.2f}): it may not be a {sequence}-weighted brain MRI (no tissue contrast)"
        )
    elif contrast["csf_to_wm"] >= CSF_WM_REFUSE:
        raise InputError(
            f"CSF is as bright as white matter (CSF/WM intensity {contrast['csf_to_wm']:.2f}; T1 scans have "
            f"< {CSF_WM_REFUSE:g}): this looks like a T2-, PD-weighted or contrast-inverted scan, and the model "
            f"was trained on {sequence}"
        )
    elif contrast["gm_to_wm"] >= GM_WM_WARN:
        warnings.append(
            f"grey matter is nearly as bright as white matter (GM/WM intensity {contrast['gm_to_wm']:.2f}, T1 "
            f"usually < {GM_WM_WARN:g}): this may be a FLAIR, PD or T2 scan, or a low-contrast {sequence}; the model "
            f"was trained on {sequence}"
        )
    return measures, warnings
