"""Normalisation, bias correction, resampling and the exact inverse mapping to the scan's grid."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from LatentAnomalyLib.bundle.configs import GridConfig
from LatentAnomalyLib.preprocess.chain import Preprocessed
from LatentAnomalyLib.preprocess.geometry import axis_aligned_grid, resample, resample_mask
from LatentAnomalyLib.preprocess.normalize import NormalisationConfig, bias_field, normalise
from LatentAnomalyLib.preprocess.registration import affine_from_arrays


def _tissue_phantom(rng):
    shape = (30, 32, 28)
    wm = np.zeros(shape, bool)
    wm[:, :16] = True
    gm = ~wm
    image = np.where(wm, 300.0, 200.0) + rng.normal(0, 5, shape)
    return image.astype(np.float32), np.ones(shape, bool), gm.astype(np.float32), wm.astype(np.float32)


def test_tissue_normalisation_maps_anchors():
    image, mask, gm, wm = _tissue_phantom(np.random.default_rng(0))
    out, info = normalise(image, mask, gm, wm, NormalisationConfig(gm_value=0.8, max_contrast_gain=10))
    assert abs(np.median(out[wm > 0]) - 1.0) < 0.01
    assert abs(np.median(out[gm > 0]) - 0.8) < 0.01
    assert info["high_anchor"] > info["low_anchor"]


def test_contrast_gain_is_capped_for_low_contrast_scans():
    _, mask, gm, wm = _tissue_phantom(np.random.default_rng(1))
    low_contrast = np.where(wm > 0, 300.0, 285.0).astype(np.float32)
    out, _ = normalise(low_contrast, mask, gm, wm, NormalisationConfig(gm_value=0.8, max_contrast_gain=1.5))
    # Uncapped, grey matter would be pulled to 0.8; the cap keeps it near its own ratio (0.95 -> 0.925).
    assert np.median(out[gm > 0]) > 0.9


def test_bias_field_recovers_a_smooth_multiplicative_field():
    rng = np.random.default_rng(2)
    image, mask, gm, wm = _tissue_phantom(rng)
    z, _, x = np.indices(image.shape) / np.asarray(image.shape)[:, None, None, None]
    field = np.exp(0.25 * (x - 0.5) + 0.2 * (z - 0.5) ** 2).astype(np.float32)
    estimated = bias_field(image * field, mask, gm, wm, NormalisationConfig(bias_degree=3))
    ratio = field / estimated
    assert ratio.std() / ratio.mean() < 0.02  # the field is recovered up to a constant
    corrected, _ = normalise(image * field, mask, gm, wm, NormalisationConfig(bias_degree=3, max_contrast_gain=10))
    assert corrected[wm > 0].std() < 0.05


def test_resample_mask_and_axis_aligned_grid_of_an_oblique_scan():
    image = sitk.Image(40, 40, 30, sitk.sitkFloat32)
    image.SetSpacing((1.0, 1.0, 1.5))
    rotation = sitk.VersorTransform((0, 0, 1), np.deg2rad(30)).GetMatrix()
    image.SetDirection(rotation)
    array = np.zeros((30, 40, 40), np.float32)
    array[10:20, 10:30, 10:30] = 1.0
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((1.0, 1.0, 1.5))
    image.SetDirection(rotation)
    grid = axis_aligned_grid(image, 2.0)
    assert grid.GetDirection() == (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
    mask = resample_mask(image > 0.5, grid)
    volume_in = array.sum() * 1.0 * 1.0 * 1.5
    volume_out = mask.sum() * 8.0
    assert abs(volume_out - volume_in) / volume_in < 0.15


def test_inverse_mapping_is_exact_for_a_smooth_map():
    """A map that is a function of physical position comes back to the scan grid as that function."""
    grid = GridConfig(size=(24, 28, 20), spacing=2.0, origin=(-24.0, -28.0, -20.0))
    native = sitk.Image(50, 40, 30, sitk.sitkFloat32)
    native.SetSpacing((1.0, 1.2, 1.5))
    native.SetOrigin((-20.0, -20.0, -18.0))
    native.SetDirection(sitk.VersorTransform((1, 1, 0), 0.3).GetMatrix())
    rotation = np.asarray(sitk.VersorTransform((0, 1, 1), 0.2).GetMatrix()).reshape(3, 3)
    transform = affine_from_arrays(np.diag([1.1, 0.9, 1.0]) @ rotation, np.array([2.0, -3.0, 1.0]))
    reference = grid.image()
    points = np.stack(np.meshgrid(*[np.arange(s) for s in grid.size], indexing="ij"), -1).reshape(-1, 3)
    physical = np.array([reference.TransformIndexToPhysicalPoint([int(v) for v in p]) for p in points])
    moved = np.array([transform.TransformPoint(p) for p in physical])  # model point -> scan point
    values = (0.01 * moved[:, 0] + 0.02 * moved[:, 1] - 0.015 * moved[:, 2]).reshape(grid.size)
    model_map = np.transpose(values, (2, 1, 0)).astype(np.float32)
    pre = Preprocessed(
        np.zeros_like(model_map),
        np.ones_like(model_map, bool),
        transform,
        native,
        np.ones(native.GetSize()[::-1], bool),
        True,
    )
    back = sitk.GetArrayFromImage(pre.to_native(model_map, grid))
    inverse = transform.GetInverse()
    checked = 0
    for k, j, i in np.argwhere(back != 0)[::97]:
        p = np.asarray(native.TransformIndexToPhysicalPoint((int(i), int(j), int(k))))
        index = np.asarray(reference.TransformPhysicalPointToContinuousIndex(inverse.TransformPoint(p)))
        if np.all(index >= 1) and np.all(index <= np.asarray(grid.size) - 2):  # away from the grid's edge
            assert abs(back[k, j, i] - (0.01 * p[0] + 0.02 * p[1] - 0.015 * p[2])) < 1e-3
            checked += 1
    assert checked > 50


def test_resample_identity_keeps_values():
    image = sitk.GetImageFromArray(np.random.default_rng(3).random((10, 12, 14)).astype(np.float32))
    out = resample(image, image)
    assert np.allclose(sitk.GetArrayFromImage(out), sitk.GetArrayFromImage(image), atol=1e-6)
