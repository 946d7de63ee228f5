"""Simulated skull stripping of other tools: each variant changes the brain boundary where such tools differ."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from LatentAnomalyLib.evaluation.skull_stripping import VARIANTS, stripped, variant_mask


def _head() -> tuple[sitk.Image, sitk.Image]:
    """A 2 mm LPS-identity grid: a 'skull' shell of intensity 50 around a spherical 'brain' of intensity 100."""
    z, y, x = np.indices((40, 40, 40))
    r = np.sqrt((x - 20) ** 2 + (y - 20) ** 2 + (z - 20) ** 2)
    scan = np.where(r < 12, 100, np.where(r < 16, 50, 0)).astype(np.int16)
    image = sitk.GetImageFromArray(scan)
    image.SetSpacing((2.0, 2.0, 2.0))
    image.SetOrigin((-40.0, -40.0, -40.0))
    labels = sitk.GetImageFromArray((r < 12).astype(np.uint8))
    labels.CopyInformation(image)
    return image, labels


def test_each_variant_moves_the_boundary_where_tools_disagree() -> None:
    image, labels = _head()
    brain = sitk.GetArrayFromImage(labels) > 0
    masks = {v: variant_mask(brain, image, v) for v in VARIANTS}
    assert np.array_equal(masks["reference"], brain)
    assert masks["dilated_4mm"].sum() > brain.sum() and not np.any(brain & ~masks["dilated_4mm"])
    assert masks["eroded_2mm"].sum() < brain.sum() and not np.any(masks["eroded_2mm"] & ~brain)
    cut = brain & ~masks["brainstem_cut_25mm"]
    superior = np.arange(40) * 2.0 - 40.0  # S of each z index (LPS identity: z is S)
    lowest = superior[np.flatnonzero(brain.any(axis=(1, 2)))[0]]
    assert cut.any() and superior[np.flatnonzero(cut.any(axis=(1, 2)))].max() < lowest + 25.0
    grown = masks["orbits_in_6mm"] & ~brain
    zz, yy, _ = np.nonzero(grown)
    # only in front (A = -y in LPS: small j) and below the centre
    assert grown.any() and np.all(superior[zz] <= 0.0) and np.all(-(yy * 2.0 - 40.0) > 0.0)


def test_stripped_keeps_the_grid_zeroes_outside_and_keeps_real_intensities_inside() -> None:
    image, labels = _head()
    out = stripped(image, labels, "dilated_4mm")
    assert out.GetSize() == image.GetSize() and out.GetOrigin() == image.GetOrigin()
    assert out.GetPixelID() == image.GetPixelID()
    array = sitk.GetArrayFromImage(out)
    assert set(np.unique(array)) == {0, 50, 100}  # the looser mask keeps some 'skull' voxels as they are
    assert sitk.GetArrayFromImage(image).sum() > array.sum()
    with pytest.raises(ValueError, match="unknown skull-stripping variant"):
        stripped(image, labels, "bet")
