"""Simulated "sites" for the site-calibration benchmark: fixed transforms of healthy IXI scans.

A site is what another hospital's scanner and pipeline would send for the same head. Sites A and B change the
acquisition (gamma on the intensities, a smooth bias field, a receive-coil field, noise, thick slices or a blur);
sites C and D are stripped by another tool (:mod:`LatentAnomalyLib.evaluation.skull_stripping`: the DLMUSE mask
with the orbital fat left in, or cut through the pons), the kind of site effect that flagged 36% of one real third
site's scans (issue 28). Every parameter was fixed before the run that reports it (docs/site-calibration.md).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import SimpleITK as sitk

from LatentAnomalyLib.case import Case
from LatentAnomalyLib.evaluation.skull_stripping import stripped
from LatentAnomalyLib.io.read import read_image

ACQUISITION = {"gamma": 1.0, "bias": 0.0, "noise": 0.0, "slice_mm": 0.0, "blur_mm": 0.0, "coil": 0.0}
SITES: dict[str, dict[str, Any]] = {
    "A": {"gamma": 0.5, "bias": 0.6, "noise": 0.08, "slice_mm": 6.0, "blur_mm": 0.0, "coil": 1.0},
    "B": {"gamma": 2.0, "bias": -0.6, "noise": 0.05, "slice_mm": 0.0, "blur_mm": 4.0, "coil": 0.8},
    "C": {**ACQUISITION, "strip": "orbits_in_6mm"},
    "D": {**ACQUISITION, "strip": "brainstem_cut_25mm"},
}
SEED = 20261207


def site_scan(case: Case, site: dict[str, Any]) -> sitk.Image:
    """``case``'s T1 as the site would send it: stripped by the site's tool first (needs the case's brain labels),
    then through its acquisition transform."""
    image = read_image(case.images["t1"])
    if site.get("strip"):
        if case.brain_mask is None:
            raise ValueError(f"{case.case_id}: a stripping site needs the scan's brain labels")
        image = stripped(image, sitk.ReadImage(str(case.brain_mask)), site["strip"])
    if all(site.get(k, v) == v for k, v in ACQUISITION.items()):
        return image
    return site_image(image, site)


def site_image(image: sitk.Image, site: dict[str, Any]) -> sitk.Image:
    """``image`` as the simulated scanner would have acquired it (float32, same geometry unless thicker slices)."""
    x = sitk.GetArrayFromImage(sitk.Cast(image, sitk.sitkFloat32)).astype(np.float64)  # z, y, x
    top = float(np.percentile(x, 99.5)) or 1.0
    x = top * np.clip(x / top, 0.0, None) ** site["gamma"]
    grid = np.meshgrid(*[np.linspace(-1.0, 1.0, n) for n in x.shape], indexing="ij")
    x = x * np.exp(site["bias"] * (0.7 * grid[0] + 0.5 * grid[1] - 0.4 * grid[2] ** 2))
    x = x * (1.0 + site["coil"] * coil_field(x.shape, image.GetSpacing()[::-1]))
    x = x + np.random.default_rng(SEED).normal(0.0, site["noise"] * top, x.shape)
    out = sitk.GetImageFromArray(np.clip(x, 0.0, None).astype(np.float32))
    out.CopyInformation(image)
    if site["blur_mm"]:
        out = sitk.SmoothingRecursiveGaussian(out, site["blur_mm"] / 2.355)
    if site["slice_mm"]:  # thick slices along the image's last axis: average, then resample
        spacing = list(out.GetSpacing())
        sigma = [1e-3, 1e-3, site["slice_mm"] / 2.355]
        smooth = sitk.SmoothingRecursiveGaussian(out, sigma)
        size = list(out.GetSize())
        size[2] = int(round(size[2] * spacing[2] / site["slice_mm"]))
        spacing[2] = site["slice_mm"]
        out = sitk.Resample(
            smooth,
            size,
            sitk.Transform(),
            sitk.sitkLinear,
            out.GetOrigin(),
            spacing,
            out.GetDirection(),
            0.0,
            sitk.sitkFloat32,
        )
    return out


def coil_field(shape: tuple[int, ...], spacing_mm: tuple[float, ...]) -> np.ndarray:
    """A receive-coil array's sensitivity, beyond a low-order polynomial bias: 8 hot spots (Gaussian, 30 mm) on a
    ring around the head's centre, 0 to 1 (what a degree-3 bias correction cannot take out)."""
    axes = [np.arange(n) * s for n, s in zip(shape, spacing_mm)]
    grid = np.meshgrid(*axes, indexing="ij")
    centre = [a[-1] / 2 for a in axes]
    radius = 0.35 * min(a[-1] for a in axes)
    field = np.zeros(shape)
    for k in range(8):
        angle = 2 * np.pi * k / 8
        spot = (centre[0], centre[1] + radius * np.cos(angle), centre[2] + radius * np.sin(angle))
        field += np.exp(-sum((g - c) ** 2 for g, c in zip(grid, spot)) / (2 * 30.0**2))
    return field / field.max()
