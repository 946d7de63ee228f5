"""The second synthetic-lesion generator: mass effect that moves the anatomy, iso-intense cores, small
periventricular lesions; reproducible and never modifying its input."""

from __future__ import annotations

import numpy as np
import pytest

from LatentAnomalyLib.evaluation.realistic_lesions import (
    REALISTIC_KINDS,
    displacement,
    log_jacobian,
    paint_realistic,
)


def _phantom() -> tuple[np.ndarray, np.ndarray]:
    """A normalised T1-like brain on a 2 mm grid: grey shell 0.6, white matter 1.0, two dark ventricles 0.15."""
    z, y, x = np.indices((56, 64, 56), dtype=np.float32)
    r = np.sqrt(((x - 28) / 24) ** 2 + ((y - 32) / 28) ** 2 + ((z - 28) / 24) ** 2)
    brain = r < 1.0
    image = np.where(r < 0.8, 1.0, 0.6).astype(np.float32)
    for cx in (23, 33):
        image[(np.abs(x - cx) < 2.5) & (np.abs(y - 32) < 8) & (np.abs(z - 28) < 3)] = 0.15
    image[~brain] = 0.0
    return image, brain


@pytest.mark.parametrize("kind", REALISTIC_KINDS)
def test_each_kind_paints_a_lesion_inside_the_brain_without_touching_the_input(kind: str) -> None:
    image, brain = _phantom()
    before = image.copy()
    lesion = paint_realistic(image, brain, np.random.default_rng(3), kind)
    assert np.array_equal(image, before)
    assert lesion.kind == kind and lesion.image.shape == image.shape and lesion.image.dtype == np.float32
    assert lesion.label.any() and not np.any(lesion.label & ~np.asarray(brain | (lesion.image != 0)))
    again = paint_realistic(image, brain, np.random.default_rng(3), kind)
    assert np.array_equal(again.image, lesion.image) and np.array_equal(again.label, lesion.label)


def test_iso_intense_gliomas_keep_the_mean_and_lose_the_contrast() -> None:
    image, brain = _phantom()
    lesion = paint_realistic(image, brain, np.random.default_rng(5), "glioma_iso")
    hypo = paint_realistic(image, brain, np.random.default_rng(5), "glioma_hypo")
    inside = lesion.label & (lesion.image > 0)
    assert abs(lesion.image[inside].mean() - image[brain].mean()) < 0.25
    assert hypo.image[hypo.label].mean() < lesion.image[inside].mean()


def test_mass_effect_moves_the_anatomy_and_its_log_jacobian_shows_expansion_at_the_centre() -> None:
    rng = np.random.default_rng(0)
    centre = np.array([28.0, 32.0, 28.0], dtype=np.float32)
    field = displacement((56, 64, 56), centre, 8.0, 0.4, rng)
    jac = log_jacobian(field)
    assert jac[28, 32, 28] > 0.05  # tissue expanded at the mass
    assert np.abs(field[:, 28, 32, 28]).max() < 1.5  # the centre itself barely moves; the tissue around it does
    assert np.abs(field[:, 28, 32, 40]).max() > 1.0
    assert abs(float(jac[2, 2, 2])) < 0.05  # far away nothing changes
    image, brain = _phantom()
    moved = paint_realistic(image, brain, np.random.default_rng(11), "glioma_hypo").image
    outside = brain & ~paint_realistic(image, brain, np.random.default_rng(11), "glioma_hypo").label
    assert np.count_nonzero(np.abs(moved - image)[outside] > 0.2) > 20  # anatomy displaced beyond the label


def test_periventricular_lesions_are_small_and_next_to_the_ventricles() -> None:
    from scipy import ndimage

    image, brain = _phantom()
    lesion = paint_realistic(image, brain, np.random.default_rng(2), "periventricular")
    parts, n = ndimage.label(lesion.label)
    sizes = np.bincount(parts.ravel())[1:]
    assert n >= 1 and sizes.max() * 8 / 1000 < 1.5  # each under 1.5 mL (2 mm voxels)
    ventricles = image < 0.3
    near = ndimage.binary_dilation(ventricles & brain, iterations=6)
    assert np.mean(near[lesion.label]) > 0.9
    with pytest.raises(ValueError, match="unknown lesion kind"):
        paint_realistic(image, brain, np.random.default_rng(2), "abscess")
