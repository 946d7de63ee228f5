"""The brain mask's hole filling: labelling on the bounding box gives scipy's fill, in 3D then slice by slice."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from LatentAnomalyLib.preprocess.brainmask import _fill_holes


def scipy_fill(mask: np.ndarray) -> np.ndarray:
    """The reference: ``binary_fill_holes`` on the volume, then on every slice along each axis in turn."""
    filled = ndimage.binary_fill_holes(mask)
    for axis in range(3):
        filled = np.stack([ndimage.binary_fill_holes(s) for s in np.moveaxis(filled, axis, 0)], axis=axis)
    return filled


@pytest.mark.parametrize("seed", range(4))
def test_fill_holes_equals_scipy_on_random_masks(seed):
    rng = np.random.default_rng(seed)
    for _ in range(150):
        mask = rng.random(tuple(rng.integers(1, 14, 3))) < rng.random() * rng.random()
        mask[: rng.integers(0, 3)] = False  # empty margins, so the bounding box is smaller than the volume
        assert np.array_equal(_fill_holes(mask), scipy_fill(mask))


def test_fill_holes_closes_enclosed_and_one_sided_holes_only():
    mask = np.zeros((12, 12, 12), dtype=bool)
    mask[2:10, 2:10, 2:10] = True
    mask[4:6, 4:6, 4:6] = False  # enclosed in 3D
    mask[4:6, 7, 0:10] = False  # a tunnel through the cube (open in 3D): closed in the slices across it
    mask[2:10, 2:4, 5] = False  # a notch from the outside in every slice: stays open
    out = _fill_holes(mask)
    assert out[4:6, 4:6, 4:6].all() and out[4:6, 7, 2:10].all()
    assert not out[2:10, 2, 5].any()
    assert np.array_equal(out, scipy_fill(mask))
    assert not _fill_holes(np.zeros((4, 5, 6), dtype=bool)).any()
