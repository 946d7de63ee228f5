"""Hemispheric asymmetry as its own evidence (issue 28, candidate C).

A healthy brain is nearly symmetric; most lesions are not. The encoder's latent map of the scan and that of its
left-right mirrored copy describe, at each 8 mm cell, the tissue there and the tissue at the mirror place (seen
in the same orientation). Their mean squared difference is large where the two sides differ. It is symmetric by
construction (a lesion lights up its healthy mirror place as much as itself), so :func:`one_sided` keeps it only
on the side whose anomaly map is the higher of the two mirror positions. The model grid's x axis (last) is
symmetric about the midline, so mirroring is a flip of that axis (:func:`~.base.mirror_x`).
"""

from __future__ import annotations

import numpy as np

from .base import EncodedScan, mirror_x, upsample
from .postprocess import PostprocessConfig, postprocess

ASYMMETRY_POSTPROCESS = PostprocessConfig(median_size=3, gaussian_sigma_vox=2.0, erode_mask_vox=0, scan_normalise=False)


def asymmetry_map(scan: EncodedScan) -> np.ndarray:
    """Mean squared difference over channels between the scan's latent and its mirrored copy's, per cell, upsampled
    to the model grid, median-filtered and smoothed (both sides of the midline get it)."""
    if scan.latent is None or scan.mirrored_latent is None:
        raise ValueError("the asymmetry needs the latent maps of the scan and of its mirrored copy")
    mask = scan.mask.astype(bool)
    diff = np.mean(np.square(scan.latent - scan.mirrored_latent, dtype=np.float32), axis=0)
    return postprocess(upsample(diff, mask.shape) * mask, mask, ASYMMETRY_POSTPROCESS)


def one_sided(anomaly: np.ndarray, evidence: np.ndarray) -> np.ndarray:
    """``evidence`` where ``anomaly`` is at least its value at the mirror place, 0 on the other side."""
    return np.where(anomaly >= mirror_x(anomaly), evidence, 0.0).astype(np.float32)


def symmetric_support(mask: np.ndarray, inner_voxels: int) -> np.ndarray:
    """Where a voxel and its mirror place are both in ``mask``, at least ``inner_voxels`` deep (an erosion): at the
    brain's edge the two sides compare brain with whatever a skull-stripping tool left, which is not a lesion."""
    support = np.asarray(mask, dtype=bool)
    if inner_voxels <= 0:
        return support
    from scipy import ndimage

    return ndimage.binary_erosion(support & mirror_x(support), iterations=inner_voxels)
