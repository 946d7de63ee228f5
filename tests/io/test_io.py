"""Reading every supported format, refusing bad input with one clear message, atomic writes."""

from __future__ import annotations

import locale

import numpy as np
import pytest
import SimpleITK as sitk

from LatentAnomalyLib.errors import InputError
from LatentAnomalyLib.io.read import read_image
from LatentAnomalyLib.io.write import write_image, write_json


@pytest.fixture(autouse=True)
def _restore_locale():
    """GDCM's DICOM writer switches the process locale to C; later tests must not read text as ASCII."""
    saved = locale.setlocale(locale.LC_ALL)
    yield
    locale.setlocale(locale.LC_ALL, saved)


def _volume(size=(12, 10, 9), spacing=(1.0, 1.5, 2.0)) -> sitk.Image:
    rng = np.random.default_rng(0)
    image = sitk.GetImageFromArray(rng.random(size[::-1]).astype(np.float32))
    image.SetSpacing(spacing)
    image.SetOrigin((3.0, -4.0, 5.0))
    image.SetDirection((0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0))
    return image


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii", ".nrrd", ".mha"])
def test_read_keeps_values_and_geometry(tmp_path, suffix):
    image = _volume()
    path = tmp_path / f"scan{suffix}"
    sitk.WriteImage(image, str(path))
    read = read_image(path)
    assert read.GetSize() == image.GetSize()
    assert np.allclose(read.GetSpacing(), image.GetSpacing())
    assert np.allclose(read.GetOrigin(), image.GetOrigin(), atol=1e-4)
    assert np.allclose(read.GetDirection(), image.GetDirection(), atol=1e-5)
    assert np.allclose(sitk.GetArrayFromImage(read), sitk.GetArrayFromImage(image), atol=1e-6)


def test_read_dicom_series(tmp_path):
    image = sitk.Cast(_volume(size=(16, 16, 10), spacing=(1.0, 1.0, 2.0)) * 1000, sitk.sitkInt16)
    image.SetDirection((1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0))
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    for k in range(image.GetSize()[2]):
        slice_ = image[:, :, k]
        origin = image.TransformIndexToPhysicalPoint((0, 0, k))
        slice_.SetMetaData("0020|0032", "\\".join(f"{v:f}" for v in origin))
        slice_.SetMetaData("0020|0013", str(k + 1))
        slice_.SetMetaData("0020|000e", "1.2.826.0.1.3680043.2.1125.1.42")
        slice_.SetMetaData("0020|0037", "1\\0\\0\\0\\1\\0")
        slice_.SetMetaData("0008|0060", "MR")
        writer.SetFileName(str(tmp_path / f"slice{k:03d}.dcm"))
        writer.Execute(slice_)
    read = read_image(tmp_path)
    assert read.GetSize() == image.GetSize()
    assert np.allclose(read.GetSpacing(), image.GetSpacing(), atol=1e-3)
    assert np.allclose(sitk.GetArrayFromImage(read), sitk.GetArrayFromImage(image))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: None, "no such file"),
        (lambda p: p.with_suffix(".txt").write_text("x") and p.with_suffix(".txt"), "unsupported file type"),
        (lambda p: p.write_bytes(b"not an image") and p, "cannot be read"),
    ],
)
def test_bad_paths_raise_input_error(tmp_path, make, message):
    path = tmp_path / "scan.nii.gz"
    made = make(path) or path
    with pytest.raises(InputError, match=message):
        read_image(made)


def test_constant_nan_and_4d_inputs_are_refused(tmp_path):
    const = sitk.Image(10, 10, 10, sitk.sitkFloat32)
    sitk.WriteImage(const, str(tmp_path / "const.nii.gz"))
    with pytest.raises(InputError, match="same value"):
        read_image(tmp_path / "const.nii.gz")
    arr = np.ones((10, 10, 10), np.float32)
    arr[0, 0, 0] = np.nan
    sitk.WriteImage(sitk.GetImageFromArray(arr), str(tmp_path / "nan.mha"))  # NIfTI writing zeroes NaN
    with pytest.raises(InputError, match="NaN"):
        read_image(tmp_path / "nan.mha")
    series = sitk.GetImageFromArray(np.random.default_rng(0).random((3, 10, 10, 10)).astype(np.float32), isVector=False)
    sitk.WriteImage(series, str(tmp_path / "4d.nii.gz"))
    with pytest.raises(InputError, match="4D"):
        read_image(tmp_path / "4d.nii.gz")


def test_atomic_write_leaves_nothing_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "out" / "heatmap.nii.gz"

    def crash(image, path, useCompression=True):
        with open(path, "wb") as handle:
            handle.write(b"half")
        raise RuntimeError("disk full")

    monkeypatch.setattr(sitk, "WriteImage", crash)
    with pytest.raises(RuntimeError):
        write_image(_volume(), target)
    assert list(target.parent.iterdir()) == []


def test_write_image_and_json_round_trip(tmp_path):
    image = _volume()
    path = write_image(image, tmp_path / "a.nii.gz")
    assert np.allclose(sitk.GetArrayFromImage(sitk.ReadImage(str(path))), sitk.GetArrayFromImage(image))
    write_json({"a": 1}, tmp_path / "s.json")
    assert (tmp_path / "s.json").read_text().strip().startswith("{")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.nii.gz", "s.json"]


def test_dicom_folder_with_two_series_needs_a_choice(tmp_path):
    from tests.io.bad_files import write_dicom_series

    write_dicom_series(tmp_path, "1.2.826.0.1.3680043.2.1125.1.1", "T1 MPRAGE", 0, slices=10)
    write_dicom_series(tmp_path, "1.2.826.0.1.3680043.2.1125.1.2", "localiser", 100, slices=12)
    with pytest.raises(InputError, match=r"holds 2 DICOM series: .*T1 MPRAGE.*localiser.*--series"):
        read_image(tmp_path)
    assert read_image(tmp_path, series="1.2.826.0.1.3680043.2.1125.1.2").GetSize()[2] == 12
    assert read_image(tmp_path, series="1.2.826.0.1.3680043.2.1125.1.1").GetSize()[2] == 10
    with pytest.raises(InputError, match=r"no DICOM series 9\.9"):
        read_image(tmp_path, series="9.9")


def test_header_is_checked_before_voxels_are_allocated(tmp_path, monkeypatch):
    """A header claiming 4000^3 voxels is refused from the header alone: ReadImage is never called."""
    from tests.io.bad_files import _raw_nifti

    path = _raw_nifti(tmp_path / "huge.nii", np.zeros(10, np.float32), shape=(4000, 4000, 4000))

    def no_read(*args, **kwargs):
        raise AssertionError("voxels were read")

    monkeypatch.setattr(sitk, "ReadImage", no_read)
    with pytest.raises(InputError, match="GB"):
        read_image(path)
    monkeypatch.setenv("LATENT_ANOMALY_MAX_BYTES", "1000")
    small = tmp_path / "small.nii.gz"
    sitk.WriteImage(_volume(), str(small))
    with pytest.raises(InputError, match=r"available 0\.0 GB"):
        read_image(small)
