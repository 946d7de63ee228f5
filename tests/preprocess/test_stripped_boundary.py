"""The stripped-input boundary steps (``preprocess/stripped_boundary.py``): the band mask cuts only the site mask's
outer band, never deep tissue, and not at all when the network misses the brain; the thick fill fills a cut
brainstem-like slab and not a thin ring; both are off in bundles that do not name them."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import SimpleITK as sitk

from LatentAnomalyLib.bundle.configs import preprocess_config_from_json
from LatentAnomalyLib.preprocess.chain import Preprocessor
from LatentAnomalyLib.preprocess.stripped_boundary import (
    StrippedBoundaryConfig,
    _deeper_than,
    band_masked,
    thick_filled,
)

BAND = StrippedBoundaryConfig(band_mm=6.0)
FILL = StrippedBoundaryConfig(fill_opening_voxels=2, fill_near_voxels=0)


def _radius(shape=(48, 48, 48)) -> np.ndarray:
    z, y, x = np.indices(shape)
    return np.sqrt((z - 24) ** 2 + (y - 24) ** 2 + (x - 24) ** 2)


def test_the_band_mask_cuts_the_outer_band_and_never_deeper_tissue():
    r = _radius()
    site = r <= 20  # the site's mask: brain plus 4 mm of tissue a tool left in
    network = (r <= 16) & ~(r <= 5)  # the network's brain, which also leaves out a "tumour" at the centre
    out = band_masked(site, network, (1.0, 1.0, 1.0), BAND)
    assert out[r <= 5].all()  # deep tissue stays whatever the network says
    assert out[(r > 5) & (r <= 16)].all()
    assert not out[(r > 16.5) & (r <= 20)].any()  # the band outside the network's brain goes
    assert not (out & ~site).any()  # never adds to the site's mask


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_bounding_box_depth_equals_the_whole_array_distance_transform(seed):
    """The band's depth on the mask's bounding box is the whole array's, also for a mask touching the array edge."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    site = ndimage.binary_opening(rng.random((30, 34, 26)) < 0.8, iterations=1)
    site[:, :, 20:] = False  # empty margin on one side, mask touching the edge on the others
    spacing = (1.2, 0.9, 1.0)
    expected = ndimage.distance_transform_edt(site, sampling=spacing) > 2.5
    assert np.array_equal(_deeper_than(site, spacing, 2.5), expected)


def test_the_band_mask_keeps_the_site_mask_when_the_network_misses_the_brain_or_the_step_is_off():
    r = _radius()
    site = r <= 20
    assert np.array_equal(band_masked(site, np.zeros_like(site), (1.0, 1.0, 1.0), BAND), site)
    assert np.array_equal(band_masked(site, r <= 16, (1.0, 1.0, 1.0), StrippedBoundaryConfig()), site)


def test_the_band_is_measured_in_mm():
    r = _radius()
    site, network = r <= 20, r <= 10
    coarse = band_masked(site, network, (3.0, 3.0, 3.0), BAND)  # 6 mm is 2 voxels of 3 mm: most of it is deep
    assert coarse[(r > 10) & (r <= 17)].all() and not coarse[(r > 18.5) & (r <= 20)].any()


def test_the_band_follows_the_spacing_of_each_axis_in_array_order():
    r = _radius()
    site = r <= 20
    # spacing is (z, y, x), as GetSpacing()[::-1] gives it for GetArrayFromImage arrays: 3 mm along z only
    out = band_masked(site, r <= 17.5, (3.0, 1.0, 1.0), BAND)
    assert not out[24, 24, 24 + 18]  # along x, 3 voxels of 1 mm from the edge: inside the 6 mm band, not brain
    assert out[24 + 18, 24, 24]  # along z, 3 voxels of 3 mm: deeper than the band, kept


def test_the_thick_fill_fills_a_cut_slab_and_not_a_thin_ring():
    template_brain = np.zeros((30, 30, 30), dtype=bool)
    template_brain[5:25, 5:25, 5:25] = True
    mask = template_brain.copy()
    mask[5:12] = False  # a cut 7 voxels thick (a brainstem cut above its end)
    mask[:, 5, :] = False  # a one-voxel ring a tighter mask leaves out
    image = np.where(mask, 1.0, 0.0).astype(np.float32)
    filling = np.full(image.shape, 0.7, dtype=np.float32)
    out = thick_filled(image, mask, template_brain, filling, FILL)
    assert np.allclose(out[6:11, 8:22, 8:22], 0.7)  # the slab is filled
    assert np.allclose(out[14:24, 5, 8:22], 0.0)  # the thin ring is not
    assert np.array_equal(out[mask], image[mask])  # tissue inside the mask is never changed
    assert out.dtype == image.dtype
    assert thick_filled(image, mask, template_brain, filling, StrippedBoundaryConfig()) is image


def test_bundles_without_the_setting_have_both_steps_off_and_bad_settings_are_refused():
    from dataclasses import asdict

    from LatentAnomalyLib.bundle.configs import PreprocessConfig

    data = asdict(PreprocessConfig())
    del data["stripped_boundary"]
    assert preprocess_config_from_json(data).stripped_boundary == StrippedBoundaryConfig()
    data["stripped_boundary"] = {"band_mm": 6.0, "fill_opening_voxels": 2}
    assert preprocess_config_from_json(data).stripped_boundary == StrippedBoundaryConfig(6.0, 0.5, 2, 2)
    with pytest.raises(ValueError, match="negative"):
        StrippedBoundaryConfig(band_mm=-1.0)
    with pytest.raises(ValueError, match="min_kept_fraction"):
        StrippedBoundaryConfig(min_kept_fraction=1.0)
    assert StrippedBoundaryConfig.from_json({"fill_opening_voxels": 2.0}).fill_opening_voxels == 2
    assert isinstance(StrippedBoundaryConfig.from_json({"fill_opening_voxels": 2.0}).fill_opening_voxels, int)
    with pytest.raises(ValueError, match="whole number"):
        StrippedBoundaryConfig.from_json({"fill_opening_voxels": 1.5})
    with pytest.raises(ValueError, match="unknown"):
        StrippedBoundaryConfig.from_json({"band": 6})


def test_on_a_skull_stripped_sample_the_steps_change_only_what_they_should(model, mslub_sample):
    image = sitk.ReadImage(str(mslub_sample["T1"]))

    def run(boundary: StrippedBoundaryConfig):
        config = replace(model.preprocess, stripped_boundary=boundary)
        return Preprocessor(config, model.template, model.brainmask_net).run(image)

    plain, banded, filled = run(StrippedBoundaryConfig()), run(BAND), run(StrippedBoundaryConfig(fill_opening_voxels=2))
    assert plain.skull_stripped and banded.skull_stripped
    assert not (banded.native_mask & ~plain.native_mask).any()  # the band only takes away ...
    assert (plain.native_mask & ~banded.native_mask).any()  # ... and here takes some tissue the network calls not brain
    inside = sitk.GetImageFromArray(plain.native_mask.astype(np.uint8))
    depth = sitk.GetArrayFromImage(sitk.SignedMaurerDistanceMap(inside, insideIsPositive=True, squaredDistance=False,
                                                                useImageSpacing=False))  # fmt: skip
    assert banded.native_mask[depth > 7].all()  # 1 mm voxels: all tissue deeper than the 6 mm band stays
    config = replace(model.preprocess, stripped_boundary=BAND)
    told = Preprocessor(config, model.template, model.brainmask_net).brain_mask(image, "stripped")[0]
    assert np.array_equal(told, banded.native_mask)  # --skull stripped takes the same path as a detected stripping
    assert np.array_equal(filled.mask, plain.mask)  # the fill never enters the scored mask ...
    changed = filled.image != plain.image
    assert changed.any() and not (changed & plain.mask).any()  # ... and changes the image only outside it
