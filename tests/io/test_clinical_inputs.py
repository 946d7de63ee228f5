"""Clinical acquisitions that must work: thick slices, fine in-plane voxels, trailing singleton
dimensions, integer types with scaling, oblique orientations. Each gives exit 0, outputs on the
input's own grid, the input voxel size in summary.json and a warning when slices are thicker than
the model grid. Made from the committed MSLUB sample (1 mm) so they run without the shared data.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from LatentAnomalyLib.cli.main import main
from LatentAnomalyLib.preprocess.geometry import _antialias, antialias_sigmas, make_grid

CPU = ["--device", "cpu", "--progress", "none"]


def _resampled(source: Path, spacing: tuple[float, float, float], angle_deg: float = 0.0) -> sitk.Image:
    """``source`` resampled to ``spacing`` on a grid rotated by ``angle_deg`` about the z axis."""
    image = sitk.ReadImage(str(source), sitk.sitkFloat32)
    rotation = sitk.Euler3DTransform()
    rotation.SetRotation(0.0, 0.0, np.deg2rad(angle_deg))
    direction = np.asarray(rotation.GetMatrix()).reshape(3, 3) @ np.asarray(image.GetDirection()).reshape(3, 3)
    extent = np.asarray(image.GetSize()) * np.asarray(image.GetSpacing())
    size = [int(np.ceil(e / s)) for e, s in zip(extent, spacing)]
    centre = image.TransformContinuousIndexToPhysicalPoint([(s - 1) / 2 for s in image.GetSize()])
    grid = sitk.Image(size, sitk.sitkFloat32)
    grid.SetSpacing(spacing)
    grid.SetDirection(direction.ravel().tolist())
    half = direction @ (np.asarray(spacing) * (np.asarray(size) - 1) / 2)
    grid.SetOrigin((np.asarray(centre) - half).tolist())
    smooth = sitk.SmoothingRecursiveGaussian(image, [max(0.5 * np.sqrt(max(s**2 - 1, 0)), 0.01) for s in spacing])
    return sitk.Resample(smooth, grid, sitk.Transform(), sitk.sitkLinear, 0.0, sitk.sitkFloat32)


def _save_nifti(image: sitk.Image, path: Path, dtype, slope: float = 1.0, inter: float = 0.0, singleton: bool = False):
    """Write through nibabel (RAS affine from the LPS geometry), optionally with scaling and a 4th singleton axis."""
    tmp = path.with_name("tmp_" + path.name)
    sitk.WriteImage(image, str(tmp))
    ref = nib.load(str(tmp))
    data = (ref.get_fdata() - inter) / slope
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        data = np.clip(np.round(data), info.min, info.max)
    data = data.astype(dtype)
    if singleton:
        data = data[..., None]
    out = nib.Nifti1Image(data, ref.affine)
    out.header.set_slope_inter(slope, inter)
    nib.save(out, str(path))
    tmp.unlink()
    return path


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _detect_ok(source: Path, out: Path, capfd) -> tuple[dict, list[str]]:
    before = _digest(source)
    code = main(["detect", str(source), "--out", str(out), *CPU])
    err = capfd.readouterr().err.strip().splitlines()
    assert code == 0, err
    assert not [line for line in err if line.startswith("error")], err
    assert _digest(source) == before
    reference = sitk.ReadImage(str(source))
    for name in ("heatmap", "labelmap"):
        result = sitk.ReadImage(str(out / f"{name}.nii.gz"))
        assert result.GetSize()[:3] == reference.GetSize()[:3]
        assert np.allclose(result.GetSpacing()[:3], reference.GetSpacing()[:3], atol=1e-4)
        assert np.allclose(result.GetOrigin()[:3], reference.GetOrigin()[:3], atol=1e-3)
        ref_dir = np.asarray(reference.GetDirection()).reshape(reference.GetDimension(), -1)[:3, :3]
        assert np.allclose(np.asarray(result.GetDirection()).reshape(3, 3), ref_dir, atol=1e-4)
    return json.loads((out / "summary.json").read_text()), err


def test_antialias_smooths_only_downsampled_axes():
    assert antialias_sigmas((1.0, 1.0, 5.0), 2.0) == pytest.approx([0.5 * np.sqrt(3), 0.5 * np.sqrt(3), 0.0])
    assert antialias_sigmas((0.5, 3.0, 0.5), 2.0)[1] == 0.0
    along_z = np.broadcast_to(np.arange(20, dtype=np.float32)[:, None, None] % 3, (20, 40, 40)).copy()
    image = sitk.GetImageFromArray(along_z)
    image.SetSpacing((1.0, 1.0, 5.0))
    smoothed = sitk.GetArrayFromImage(_antialias(image, make_grid((8, 8, 8), 2.0, (0, 0, 0))))
    # in-plane constant, so in-plane smoothing changes nothing; no smoothing across the 5 mm slices
    assert np.allclose(smoothed, along_z, atol=1e-4)
    noise = sitk.GetImageFromArray(np.random.default_rng(0).random((20, 40, 40)).astype(np.float32))
    noise.SetSpacing((1.0, 1.0, 5.0))
    filtered = sitk.GetArrayFromImage(_antialias(noise, make_grid((8, 8, 8), 2.0, (0, 0, 0))))
    assert filtered.std() < 0.5 * sitk.GetArrayFromImage(noise).std()  # in-plane smoothing did happen


def test_thick_slices_fine_in_plane_uint8_with_trailing_singleton(tmp_path, mslub_sample, capfd):
    """0.5 x 0.5 mm in-plane, 3 mm slices, uint8, shape (x, y, z, 1): the routine clinical 2D protocol."""
    source = _save_nifti(
        _resampled(mslub_sample["T1"], (0.5, 0.5, 3.0)), tmp_path / "thick.nii.gz", np.uint8, slope=1.0, singleton=True
    )
    assert nib.load(str(source)).shape[3:] == (1,)
    summary, err = _detect_ok(source, tmp_path / "out", capfd)
    assert summary["input"]["voxel_size_mm"] == pytest.approx([0.5, 0.5, 3.0])
    assert any("3 mm thick" in w for w in summary["warnings"])
    assert any(line.startswith("warning: ") and "3 mm thick" in line for line in err)


def test_six_mm_oblique_int16_scaled(tmp_path, mslub_sample, capfd):
    """6 mm slices (the limit), 0.9 mm in-plane, a 20 degree oblique grid, int16 with slope/intercept."""
    image = _resampled(mslub_sample["T1"], (0.9, 0.9, 6.0), angle_deg=20.0)
    source = _save_nifti(image, tmp_path / "oblique.nii.gz", np.int16, slope=0.25, inter=-3.0)
    summary, _ = _detect_ok(source, tmp_path / "out", capfd)
    assert summary["input"]["voxel_size_mm"] == pytest.approx([0.9, 0.9, 6.0], abs=1e-4)
    assert 600 < summary["brain_volume_ml"] < 2500


@pytest.mark.parametrize("thickness", [6.5, 8.0])
def test_slices_thicker_than_6mm_are_refused_with_the_reason(tmp_path, thickness, capfd):
    image = sitk.GetImageFromArray(np.random.default_rng(0).random((20, 64, 64)).astype(np.float32))
    image.SetSpacing((1.0, 1.0, thickness))
    source = tmp_path / "thick.nii.gz"
    sitk.WriteImage(image, str(source))
    code = main(["detect", str(source), "--out", str(tmp_path / "out"), *CPU])
    err = capfd.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error: ")
    assert f"{thickness:g} mm slices are thicker than the 6 mm limit" in err[0]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.uint16, np.int16, np.uint32, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("slope", [1.0, 0.5])
def test_every_voxel_type_and_scaling_reads_the_true_values(tmp_path, dtype, slope):
    from LatentAnomalyLib.io.read import read_image

    raw = (np.arange(24 * 24 * 24) % 100).reshape(24, 24, 24).astype(dtype)
    image = nib.Nifti1Image(raw, np.diag([0.9, 0.9, 3.0, 1.0]))
    image.header.set_slope_inter(slope, 2.0)
    path = tmp_path / "scan.nii.gz"
    nib.save(image, str(path))
    values = sitk.GetArrayFromImage(read_image(path))  # (z, y, x)
    assert np.allclose(values, np.transpose(raw.astype(np.float64) * slope + 2.0, (2, 1, 0)), atol=1e-4)
