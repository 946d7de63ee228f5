"""Slice views rendered offscreen by Slicer's own renderer: not blank, heatmap colours where the label map is."""

from __future__ import annotations

import numpy as np
import pytest
import vtk
from vtk.util.numpy_support import vtk_to_numpy

from LatentAnomalyLib.outputs.viewing import DEFAULT_HEATMAP_OPACITY
from tests.slicer_gui import pictures, review

pytestmark = pytest.mark.mrml


def _pixels(path) -> np.ndarray:
    """(height, width, channels) of a PNG, row 0 at the bottom (as the views' XY coordinates)."""
    reader = vtk.vtkPNGReader()
    reader.SetFileName(str(path))
    reader.Update()
    image = reader.GetOutput()
    width, height, _ = image.GetDimensions()
    return vtk_to_numpy(image.GetPointData().GetScalars()).reshape(height, width, -1)


def test_rendered_views_show_the_heatmap_where_the_label_map_is(loaded, tmp_path):
    context = loaded.context
    rows = context.logic.review.regionRows(loaded.label, review.summary_of(loaded.label))
    centroid = rows[0].ras
    renderer = pictures.SliceViewPictures(context.scene, context.app, (256, 256))
    before = {context.scene.GetNthNode(i).GetID() for i in range(context.scene.GetNumberOfNodes())}
    shown = renderer.render(
        tmp_path, loaded.inputVolume, loaded.heatmap, loaded.label, DEFAULT_HEATMAP_OPACITY, centroid, "result"
    )
    plain = renderer.render(tmp_path, loaded.inputVolume, point=centroid, prefix="scan")
    after = {context.scene.GetNthNode(i).GetID() for i in range(context.scene.GetNumberOfNodes())}
    assert after == before  # the picture views leave nothing behind
    assert [p.orientation for p in shown] == list(pictures.VIEWS)
    for picture, scan in zip(shown, plain, strict=True):
        assert picture.path.stat().st_size > 1000
        pixels = _pixels(picture.path).astype(int)
        grey = _pixels(scan.path).astype(int)
        assert pixels.shape == (256, 256, 3) and pixels.std() > 10, picture.orientation  # not blank
        assert np.abs(grey[..., 0] - grey[..., 2]).max() <= 2  # the scan alone is grey
        # The region's centroid in this view's pixels: heatmap colour (Inferno, warm) over the grey scan.
        x, y, _, _ = np.linalg.inv(np.array(picture.xyToRas)) @ [*centroid, 1.0]
        x, y = int(round(x)), int(round(y))
        patch = pixels[y - 1 : y + 2, x - 1 : x + 2].reshape(-1, 3)
        assert (patch[:, 0] - patch[:, 2]).mean() > 30, (picture.orientation, patch.tolist())
        assert np.abs(patch - grey[y - 1 : y + 2, x - 1 : x + 2].reshape(-1, 3)).sum(axis=1).min() > 30
        # The label map's outline: green pixels (viewing.LABEL_OUTLINE_RGB) that the scan alone does not have.
        green = (pixels[..., 1] > 200) & (pixels[..., 0] < 60) & (pixels[..., 2] < 120)
        assert green.sum() > 10, picture.orientation
        assert picture.seconds < 5.0


def test_pictures_of_result_files_from_plain_python(sample_detection, tmp_path, capsys):
    """``python -m LatentAnomalyGUI.standalone``: how Resources/Screenshots was made (there from a BraTS T1)."""
    from tests.slicer_gui import SAMPLE, standalone

    montage = tmp_path / "montage.png"
    arguments = [str(SAMPLE), str(sample_detection.files), str(tmp_path / "views"), "--size", "200"]
    assert standalone.main([*arguments, "--montage", str(montage)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 4 and '"view": "Axial"' in printed[0] and str(montage) in printed[3]
    assert sorted(p.name for p in (tmp_path / "views").iterdir()) == [
        "view-axial.png",
        "view-coronal.png",
        "view-sagittal.png",
    ]
    assert _pixels(montage).shape == (200, 600, 3)
    assert np.array_equal(_pixels(montage)[:, :200], _pixels(tmp_path / "views" / "view-axial.png"))
