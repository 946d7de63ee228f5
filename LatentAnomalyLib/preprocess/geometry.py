"""Grids and resampling.

All resampling goes through :func:`resample` so training, detection and the inverse mapping of
scores back to the scan use the same interpolation and anti-aliasing. Grids use SimpleITK's
physical (LPS) coordinates, so one affine transform maps any scan onto the model grid whatever
its orientation (RAS, LPS, PSR or oblique).
"""

from __future__ import annotations

import itertools

import numpy as np
import SimpleITK as sitk

IDENTITY_DIRECTION = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)


def physical_corners(image: sitk.Image) -> np.ndarray:
    """The 8 corners of the image's voxel-centre box in physical coordinates, shape (8, 3)."""
    size = image.GetSize()
    corners = [
        image.TransformContinuousIndexToPhysicalPoint([float(c) for c in idx])
        for idx in itertools.product(*[(0, s - 1) for s in size])
    ]
    return np.asarray(corners)


def axis_aligned_grid(image: sitk.Image, spacing: float, margin_mm: float = 0.0) -> sitk.Image:
    """An empty float32 image with identity direction covering ``image``'s extent at ``spacing``.

    Used as the working grid for brain extraction: whatever the input orientation, the network
    always sees the head with the same axis order and handedness.
    """
    corners = physical_corners(image)
    lo = corners.min(axis=0) - margin_mm
    hi = corners.max(axis=0) + margin_mm
    size = [int(np.ceil((h - low) / spacing)) + 1 for low, h in zip(lo, hi)]
    grid = sitk.Image(size, sitk.sitkFloat32)
    grid.SetSpacing([spacing] * 3)
    grid.SetOrigin([float(v) for v in lo])
    grid.SetDirection(IDENTITY_DIRECTION)
    return grid


def make_grid(size: tuple[int, int, int], spacing: float, origin: tuple[float, float, float]) -> sitk.Image:
    """An empty float32 image with identity direction."""
    grid = sitk.Image([int(s) for s in size], sitk.sitkFloat32)
    grid.SetSpacing([float(spacing)] * 3)
    grid.SetOrigin([float(v) for v in origin])
    grid.SetDirection(IDENTITY_DIRECTION)
    return grid


def antialias_sigmas(in_spacing: tuple[float, ...], out_spacing: float) -> list[float]:
    """Gaussian sigma (mm) per image axis: ``0.5 * sqrt(out^2 - in^2)`` where the axis is downsampled, else 0."""
    in_sp = np.asarray(in_spacing, dtype=float)
    return [float(s) for s in 0.5 * np.sqrt(np.clip(out_spacing**2 - in_sp**2, 0.0, None))]


def _antialias(image: sitk.Image, reference: sitk.Image) -> sitk.Image:
    """:func:`antialiased` for resampling onto ``reference`` (its finest spacing)."""
    return antialiased(image, float(min(reference.GetSpacing())))


def antialiased(image: sitk.Image, spacing: float) -> sitk.Image:
    """Gaussian pre-filter so that downsampling to ``spacing`` mm does not alias (sigma from the spacing ratio).

    Only axes finer than the target grid are smoothed: a thick-slice scan (1x1x5 mm onto 2 mm) is
    smoothed in-plane and left alone across slices, where resampling upsamples. ``resample`` applies it
    itself; callers resampling one scan onto several grids of one spacing can filter once and resample
    the result with ``antialias=False`` (the same output).
    """
    in_sp = np.asarray(image.GetSpacing())
    sigma = antialias_sigmas(image.GetSpacing(), spacing)
    if max(sigma) < 0.25 * float(in_sp.min()):
        return image
    if min(sigma) > 0.0:
        return sitk.SmoothingRecursiveGaussian(image, sigma)
    smoothed = sitk.Cast(image, sitk.sitkFloat32)
    for axis, s in enumerate(sigma):
        if s > 0.0:  # the same recursive filter, applied along the downsampled axes only
            smoothed = sitk.RecursiveGaussian(smoothed, s, False, sitk.RecursiveGaussianImageFilter.ZeroOrder, axis)
    return smoothed


def resample(
    image: sitk.Image,
    reference: sitk.Image,
    transform: sitk.Transform | None = None,
    interpolator: int = sitk.sitkLinear,
    default: float = 0.0,
    antialias: bool = True,
) -> sitk.Image:
    """Resample ``image`` onto ``reference``'s grid.

    ``transform`` maps points of the reference (output) space to the image (input) space, as
    SimpleITK expects. Anti-aliasing applies to continuous images only, never to label images.
    """
    source = image
    if antialias and interpolator != sitk.sitkNearestNeighbor:
        source = _antialias(image, reference)
    return sitk.Resample(
        source,
        reference,
        transform if transform is not None else sitk.Transform(),
        interpolator,
        default,
        sitk.sitkFloat32,
    )


def resample_mask(mask: sitk.Image, reference: sitk.Image, transform: sitk.Transform | None = None) -> np.ndarray:
    """Resample a binary mask by linear interpolation of its indicator and a 0.5 cut (no stair-steps)."""
    indicator = sitk.Cast(mask > 0, sitk.sitkFloat32)
    out = resample(indicator, reference, transform, sitk.sitkLinear, 0.0, antialias=False)
    return sitk.GetArrayFromImage(out) >= 0.5
