"""Affine registration of a skull-stripped brain to the model's template.

Latent scorers compare each location with the same location in healthy brains, so brains must be
aligned. An affine map (12 parameters) is enough at the model's 2 mm grid and, unlike a deformable
one, cannot "explain away" a tumour by warping healthy tissue over it. It is also exactly
invertible, which is what maps scores back to the scan's own grid.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import SimpleITK as sitk

from ..bundle.configs import RegistrationConfig


def _method(config: RegistrationConfig, fixed_mask: sitk.Image | None) -> sitk.ImageRegistrationMethod:
    reg = sitk.ImageRegistrationMethod()
    reg.SetMetricAsMattesMutualInformation(numberOfHistogramBins=config.histogram_bins)
    reg.SetMetricSamplingStrategy(reg.REGULAR)
    reg.SetMetricSamplingPercentage(config.sampling_fraction, config.seed)
    if fixed_mask is not None:
        reg.SetMetricFixedMask(fixed_mask)
    reg.SetInterpolator(sitk.sitkLinear)
    reg.SetOptimizerAsRegularStepGradientDescent(
        learningRate=1.0,
        minStep=1e-4,
        numberOfIterations=config.iterations,
        relaxationFactor=0.6,
        gradientMagnitudeTolerance=1e-6,
    )
    reg.SetOptimizerScalesFromPhysicalShift()
    reg.SetShrinkFactorsPerLevel(list(config.shrink_factors))
    reg.SetSmoothingSigmasPerLevel(list(config.smoothing_mm))
    reg.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()
    return reg


@contextmanager
def single_threaded_itk() -> Iterator[None]:
    """Run ITK single-threaded for the duration, then restore the previous thread count.

    With ITK's thread pool the Mattes metric's reductions (and the moments initialiser) are not
    order-stable: the same scan registered twice in one process gave transforms differing by
    1e-5, which moved heatmap values by up to 0.2. One thread makes registration, and with it
    detection, evaluation and training, bit-reproducible on a CPU; it costs about 1 s per scan.
    """
    previous = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
    try:
        yield
    finally:
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(previous)


def register_affine(
    moving: sitk.Image,
    fixed: sitk.Image,
    config: RegistrationConfig = RegistrationConfig(),
    fixed_mask: sitk.Image | None = None,
) -> sitk.AffineTransform:
    """Return the affine transform mapping fixed (template) points to moving (scan) points.

    Both images should be skull-stripped (zero outside the brain). Moments of the two brains
    initialise a similarity stage (rotation, translation, isotropic scale), which initialises the
    full affine stage; going straight to 12 parameters sometimes shears badly on tumour scans.
    """
    with single_threaded_itk():
        return _register(moving, fixed, config, fixed_mask)


def _register(
    moving: sitk.Image, fixed: sitk.Image, config: RegistrationConfig, fixed_mask: sitk.Image | None
) -> sitk.AffineTransform:
    fixed = sitk.Cast(fixed, sitk.sitkFloat32)
    moving = sitk.Cast(moving, sitk.sitkFloat32)
    initial = sitk.CenteredTransformInitializer(
        fixed, moving, sitk.Similarity3DTransform(), sitk.CenteredTransformInitializerFilter.MOMENTS
    )
    similarity = sitk.Similarity3DTransform(initial)
    reg = _method(config, fixed_mask)
    reg.SetInitialTransform(similarity, inPlace=True)
    reg.Execute(fixed, moving)

    affine = sitk.AffineTransform(3)
    affine.SetCenter(similarity.GetCenter())
    affine.SetMatrix(similarity.GetMatrix())
    affine.SetTranslation(similarity.GetTranslation())
    reg = _method(config, fixed_mask)
    reg.SetInitialTransform(affine, inPlace=True)
    reg.Execute(fixed, moving)
    return _as_plain_affine(affine)


def _as_plain_affine(transform: sitk.AffineTransform) -> sitk.AffineTransform:
    """Fold the centre into the translation so the transform is just (matrix, translation)."""
    matrix = np.asarray(transform.GetMatrix()).reshape(3, 3)
    center = np.asarray(transform.GetCenter())
    translation = np.asarray(transform.GetTranslation()) + center - matrix @ center
    return affine_from_arrays(matrix, translation)


def affine_from_arrays(matrix: np.ndarray, translation: np.ndarray) -> sitk.AffineTransform:
    """Build a centre-free affine transform from a 3x3 matrix and a translation."""
    out = sitk.AffineTransform(3)
    out.SetMatrix([float(v) for v in np.asarray(matrix).ravel()])
    out.SetTranslation([float(v) for v in np.asarray(translation)])
    return out


def affine_to_arrays(transform: sitk.AffineTransform) -> tuple[np.ndarray, np.ndarray]:
    """Matrix and translation of a (centre-free) affine transform."""
    plain = _as_plain_affine(transform)
    return np.asarray(plain.GetMatrix()).reshape(3, 3), np.asarray(plain.GetTranslation())


def scale_factor(transform: sitk.AffineTransform) -> float:
    """Volume ratio scan/template: a sanity check (a failed registration gives absurd scales)."""
    return float(abs(np.linalg.det(np.asarray(transform.GetMatrix()).reshape(3, 3))))
