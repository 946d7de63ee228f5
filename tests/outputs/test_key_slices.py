"""The key-slices picture of the PACS door: radiological orientation, overlay and outline where the region is."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from LatentAnomalyLib.outputs.key_slices import key_slices_picture


def test_a_region_on_the_patients_left_shows_on_the_right_of_the_axial_view_with_its_outline():
    scan = np.full((20, 30, 40), 100.0)
    scan[5:15, 5:25, 5:35] = 300.0
    heat = np.zeros_like(scan)
    heat[5:15, 5:25, 5:35] = 0.1
    heat[8:12, 10:16, 28:34] = 5.0  # high x: the patient's left in LPS
    label = (heat > 1.0).astype(np.uint8)
    images = []
    for array in (scan, heat, label):
        image = sitk.GetImageFromArray(array)
        image.SetSpacing((1.0, 1.0, 2.0))
        images.append(image)
    picture = key_slices_picture(*images, threshold=1.0)
    assert picture.dtype == np.uint8 and picture.shape[0] >= 256
    factor = picture.shape[0] // 40  # the tallest view: coronal/sagittal, 20 slices of 2 mm
    axial = picture[: 30 * factor, : 40 * factor]
    green = np.all(axial == (0, 255, 51), axis=-1)
    columns = np.flatnonzero(green.any(axis=0)) / factor
    assert green.any() and columns.min() >= 27 and columns.max() <= 34
    hot = axial[13 * factor, 31 * factor].astype(int)  # inside the region, off its outline
    assert hot[0] > hot[2] + 40  # Inferno's warm colours over the region, not the grey scan
