"""Brain extraction: a small 3D U-Net for scans with skull, the scan's own support for stripped ones.

Why a learned extractor: IXI ships brain labels for 148 heads, which is plenty to train a
4 mm U-Net that runs in a fraction of a second on a CPU (its Dice ceiling at 4 mm is above 0.99,
measured by down- and up-sampling the IXI labels). Registration-based masks are slower and coarser.

Why not run it on every scan: a network that has only seen healthy heads may cut a tumour out of
the brain, and then it could never be flagged. Scans that are already skull-stripped (BraTS,
MSLUB, most research data) are recognised by the size of their foreground and keep their own
support as the mask.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk
import torch
from scipy import ndimage

from .brainmask_net import BrainMaskConfig, head_intensity_scale, net_input, predict_array
from .geometry import axis_aligned_grid, resample


def foreground(array: np.ndarray, fraction: float) -> np.ndarray:
    """Largest connected component above a small fraction of the bright end, holes filled."""
    fg = array > fraction * head_intensity_scale(array)
    labels, n = ndimage.label(fg)
    if n == 0:
        return fg
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    largest = labels == int(sizes.argmax())
    return _fill_holes(largest)


def _fill_holes(mask: np.ndarray) -> np.ndarray:
    filled = ndimage.binary_fill_holes(mask)
    # Holes open to one side in 3D (sulci, ventricles cut by the field of view) close slice-wise.
    for axis in range(3):
        filled = np.stack([ndimage.binary_fill_holes(s) for s in np.moveaxis(filled, axis, 0)], axis=axis)
    return filled


def looks_skull_stripped(image: sitk.Image, config: BrainMaskConfig = BrainMaskConfig()) -> bool:
    """True when the scan's foreground is brain-sized: a head with skull and scalp is much larger."""
    work = resample(image, axis_aligned_grid(image, config.spacing))
    fg = foreground(sitk.GetArrayFromImage(work), config.foreground_fraction)
    volume_ml = float(fg.sum()) * config.spacing**3 / 1000.0
    return volume_ml < config.stripped_max_ml


def stripped_mask(image: sitk.Image, config: BrainMaskConfig = BrainMaskConfig()) -> sitk.Image:
    """Brain mask of a skull-stripped scan on its own grid: its cleaned foreground."""
    array = sitk.GetArrayFromImage(image)
    mask = foreground(array, config.foreground_fraction).astype(np.uint8)
    out = sitk.GetImageFromArray(mask)
    out.CopyInformation(image)
    return out


def predict_probability(
    net: torch.nn.Module, image: sitk.Image, config: BrainMaskConfig, device: str = "cpu"
) -> sitk.Image:
    """Brain probability on a 4 mm axis-aligned grid covering the scan (the U-Net's own grid)."""
    work = resample(image, axis_aligned_grid(image, config.spacing))
    prob = predict_array(net, net_input(sitk.GetArrayFromImage(work)), device)
    out = sitk.GetImageFromArray(prob.astype(np.float32))
    out.CopyInformation(work)
    return out


def mask_from_probability(
    probability: sitk.Image, reference: sitk.Image, transform: sitk.Transform | None = None
) -> np.ndarray:
    """Resample a brain probability onto ``reference`` and keep the largest component above 0.5."""
    prob = sitk.GetArrayFromImage(resample(probability, reference, transform, antialias=False))
    mask = prob >= 0.5
    labels, n = ndimage.label(mask)
    if n > 1:
        sizes = np.bincount(labels.ravel())
        sizes[0] = 0
        mask = labels == int(sizes.argmax())
    return ndimage.binary_fill_holes(mask)
