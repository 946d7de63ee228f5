"""The intensity screen: clean scans pass untouched, a few spikes are replaced by their neighbours, and scans whose
intensities cannot give a brain are refused (``preprocess/intensity_screen.py``)."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from LatentAnomalyLib.errors import InputError
from LatentAnomalyLib.preprocess.intensity_screen import screen_intensities


def _head(shape=(40, 48, 48)) -> np.ndarray:
    """A dark field of view around a bright textured ellipsoid (a stand-in for a head)."""
    rng = np.random.default_rng(0)
    z, y, x = np.mgrid[: shape[0], : shape[1], : shape[2]]
    r = ((z - shape[0] / 2) / 15) ** 2 + ((y - shape[1] / 2) / 18) ** 2 + ((x - shape[2] / 2) / 18) ** 2
    return np.where(r < 1, 600 + 200 * rng.random(shape), rng.random(shape) * 5).astype(np.float32)


def _image(array: np.ndarray) -> sitk.Image:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((1.5, 1.0, 1.0))
    image.SetOrigin((3.0, -2.0, 7.0))
    return image


def test_a_clean_scan_is_returned_untouched():
    image = _image(_head())
    screened, notes = screen_intensities(image)
    assert screened is image and notes == []


@pytest.mark.parametrize("value", [1e30, -1e30, 8e4, -3e4])
def test_a_few_spikes_take_their_neighbours_value(value):
    array = _head()
    spots = [(20, 24, 24), (5, 5, 5), (30, 10, 40)]
    for spot in spots:
        array[spot] = value
    screened, notes = screen_intensities(_image(array), "scan.nii.gz")
    out = sitk.GetArrayFromImage(screened)
    assert len(notes) == 1 and "3 voxel(s)" in notes[0] and "input file is unchanged" in notes[0]
    clean = _head()
    for spot in spots:
        box = tuple(slice(i - 1, i + 2) for i in spot)
        assert out[spot] == pytest.approx(np.median(np.delete(clean[box].ravel(), 13)), rel=1e-6)
    others = np.ones(array.shape, bool)
    for spot in spots:
        others[spot] = False
    assert np.array_equal(out[others], array[others])
    assert screened.GetOrigin() == (3.0, -2.0, 7.0) and screened.GetSpacing() == (1.5, 1.0, 1.0)


def test_a_bright_but_plausible_voxel_is_kept():
    """Vessels and fat reach 3.2 robust ranges above the 99th percentile in the scans here; the margin is 10."""
    array = _head()
    array[20, 24, 24] = 2500.0  # about 3x the brightest tissue
    screened, notes = screen_intensities(_image(array))
    assert notes == [] and sitk.GetArrayFromImage(screened)[20, 24, 24] == 2500.0


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ("many_spikes", "far outside the rest"),
        ("heavy_corruption", "far outside the rest"),
        ("heavy_corruption_100x", "far outside the rest"),
        ("labels", "distinct intensities"),
        ("constant", "same value"),
        ("inverted", "inverted"),
    ],
)
def test_intensities_that_cannot_give_a_brain_are_refused(change, words):
    array = _head()
    if change == "many_spikes":
        array.reshape(-1)[:: 5000] = 1e30  # 0.02% of the voxels
    elif change == "heavy_corruption":
        array.reshape(-1)[::20] = 1e30  # 5%: the 99th percentile itself is corrupted
    elif change == "heavy_corruption_100x":
        array.reshape(-1)[::20] = 100 * array.max()
    elif change == "labels":
        array = np.digitize(array, [100, 700]).astype(np.float32)
    elif change == "constant":
        array = np.full(array.shape, 7.0, np.float32)
        array[10, 10, 10:14] = 8.0
    elif change == "inverted":
        array = array.max() - array
    with pytest.raises(InputError, match=words):
        screen_intensities(_image(array), "scan.nii.gz")
