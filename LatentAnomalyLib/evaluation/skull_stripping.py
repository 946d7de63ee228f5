"""Simulated skull stripping by other tools, for measuring how much a site's own brain mask moves the decisions.

A site that strips the skull with its own tool sends scans whose brain boundary differs from the one the healthy
calibration scans had: tools disagree most at the brainstem and skull base (where the cut is made), over the
orbits (orbital fat left in) and along the cortex (masks a few millimetres tighter or looser, dura and CSF left
in). A map that reads the boundary as an anomaly flags healthy scans of such a site (issue 28: 36% of one site's
scans). These variants reproduce those differences on scans that come with skull and a reference brain mask
(IXI T1 with its DLMUSE labels), on the scan's own grid, keeping the scan's real intensities wherever a looser mask
keeps tissue; everything outside the variant's mask becomes 0, as stripped scans arrive. Plain numpy/SimpleITK.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

VARIANTS = ("reference", "dilated_4mm", "eroded_2mm", "brainstem_cut_25mm", "orbits_in_6mm")


def _ball(radius_mm: float, spacing: tuple[float, ...]) -> np.ndarray:
    """A (z, y, x) structuring element: the voxels within ``radius_mm`` of the centre on this grid."""
    steps = [max(int(np.floor(radius_mm / s)), 0) for s in spacing[::-1]]
    grids = np.meshgrid(*[np.arange(-n, n + 1) * s for n, s in zip(steps, spacing[::-1])], indexing="ij")
    return sum(g**2 for g in grids) <= radius_mm**2 + 1e-6


def _ras(image: sitk.Image) -> np.ndarray:
    """(3, z, y, x) RAS coordinates (mm) of every voxel centre (SimpleITK works in LPS)."""
    size = image.GetSize()
    ijk = np.indices(size[::-1], dtype=np.float64)[::-1]  # (i, j, k) on the (z, y, x) array
    matrix = np.asarray(image.GetDirection(), dtype=np.float64).reshape(3, 3) * np.asarray(image.GetSpacing())
    lps = np.tensordot(matrix, ijk, axes=1) + np.asarray(image.GetOrigin()).reshape(3, 1, 1, 1)
    return lps * np.array([-1.0, -1.0, 1.0]).reshape(3, 1, 1, 1)


def _dilated(brain: np.ndarray, spacing: tuple[float, ...], mm: float) -> np.ndarray:
    return ndimage.binary_dilation(brain, structure=_ball(mm, spacing))


def _eroded(brain: np.ndarray, spacing: tuple[float, ...], mm: float) -> np.ndarray:
    return ndimage.binary_erosion(brain, structure=_ball(mm, spacing))


def _brainstem_cut(brain: np.ndarray, ras: np.ndarray, mm: float) -> np.ndarray:
    """Everything below the plane ``mm`` above the lowest brain voxel removed (a cut through the pons)."""
    superior = ras[2]
    return brain & (superior >= superior[brain].min() + mm)


def _orbits_in(brain: np.ndarray, spacing: tuple[float, ...], ras: np.ndarray, mm: float) -> np.ndarray:
    """The mask grown by ``mm`` in front of and below the frontal lobes only (orbital fat and the orbits' roof)."""
    anterior, superior = ras[1], ras[2]
    a_values, s_values = anterior[brain], superior[brain]
    front = anterior >= np.percentile(a_values, 70)
    low = superior <= np.percentile(s_values, 45)
    return brain | (_dilated(brain, spacing, mm) & front & low)


def variant_mask(brain: np.ndarray, reference: sitk.Image, variant: str) -> np.ndarray:
    """The brain mask another tool would give, on the (z, y, x) grid of ``reference``."""
    spacing = reference.GetSpacing()
    makers: dict[str, Callable[[], np.ndarray]] = {
        "reference": lambda: brain,
        "dilated_4mm": lambda: _dilated(brain, spacing, 4.0),
        "eroded_2mm": lambda: _eroded(brain, spacing, 2.0),
        "brainstem_cut_25mm": lambda: _brainstem_cut(brain, _ras(reference), 25.0),
        "orbits_in_6mm": lambda: _orbits_in(brain, spacing, _ras(reference), 6.0),
    }
    if variant not in makers:
        raise ValueError(f"unknown skull-stripping variant {variant!r}; known: {', '.join(VARIANTS)}")
    return np.asarray(makers[variant](), dtype=bool)


def stripped(scan: sitk.Image, brain_labels: sitk.Image, variant: str) -> sitk.Image:
    """``scan`` as another tool would strip it: its voxels inside the variant's mask, 0 elsewhere (same grid, same
    voxel type, same geometry). ``brain_labels``: the reference brain labels on the scan's grid (label > 0)."""
    brain = sitk.GetArrayViewFromImage(brain_labels) > 0
    if brain.shape != sitk.GetArrayViewFromImage(scan).shape:
        raise ValueError("the brain labels and the scan are not on the same grid")
    mask = variant_mask(brain, scan, variant)
    array = sitk.GetArrayFromImage(scan)
    out = sitk.GetImageFromArray(np.where(mask, array, np.zeros_like(array)))
    out.CopyInformation(scan)
    return out
