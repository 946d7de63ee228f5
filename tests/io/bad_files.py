"""Bad input files for the refusal tests, generated in a temporary folder: broken, lying or unusable scans, DICOM
series, and ``CASES``, the corpus ``test_bad_inputs`` runs."""

from __future__ import annotations

import gzip
import locale
from collections.abc import Callable
from pathlib import Path

import nibabel as nib
import numpy as np
import SimpleITK as sitk


def _volume(shape=(24, 24, 24), spacing=(1.0, 1.0, 1.0), dtype=np.float32) -> sitk.Image:
    data = np.random.default_rng(0).random(shape[::-1]).astype(dtype)
    image = sitk.GetImageFromArray(data)
    image.SetSpacing(spacing)
    return image


def _raw_nifti(path: Path, data: np.ndarray, shape=None, pixdim=(1.0, 1.0, 1.0), sform=None) -> Path:
    """Write NIfTI bytes directly, so that headers a library would refuse to write can be made."""
    header = nib.Nifti1Header()
    header.set_data_dtype(data.dtype)
    header.set_data_shape(shape or data.shape)
    header["pixdim"][1 : 1 + len(pixdim)] = pixdim
    header["qform_code"] = 0
    if sform is not None:
        header["sform_code"] = 1
        header["srow_x"], header["srow_y"], header["srow_z"] = sform
    header["vox_offset"] = 352
    blob = header.binaryblock + b"\0" * 4 + np.asarray(data).tobytes(order="F")
    path.write_bytes(gzip.compress(blob) if path.name.endswith(".gz") else blob)
    return path


def _mha_with_spacing(path: Path, spacing: str) -> Path:
    sitk.WriteImage(_volume(), str(path))
    text = path.read_bytes()
    return _write(path, text.replace(b"ElementSpacing = 1 1 1", f"ElementSpacing = {spacing}".encode()))


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _with_value(path: Path, value: float) -> Path:
    data = sitk.GetArrayFromImage(_volume())
    data[3, 4, 5] = value
    sitk.WriteImage(sitk.GetImageFromArray(data), str(path))  # MetaImage keeps NaN/Inf (NIfTI readers zero them)
    return path


def _truncated(tmp: Path) -> Path:
    full = tmp / "full.nii.gz"
    sitk.WriteImage(_volume((40, 40, 40)), str(full))
    data = full.read_bytes()
    full.unlink()
    return _write(tmp / "truncated.nii.gz", data[: len(data) // 2])


def _truncated_plain(tmp: Path) -> Path:
    full = tmp / "full.nii"
    sitk.WriteImage(_volume((40, 40, 40)), str(full))
    data = full.read_bytes()
    full.unlink()
    return _write(tmp / "truncated.nii", data[: len(data) - 1000])


def _dicom_two_series(tmp: Path) -> Path:
    folder = tmp / "dicom"
    folder.mkdir()
    write_dicom_series(folder, "1.2.826.0.1.3680043.2.1125.1.1", "T1 MPRAGE", 0)
    write_dicom_series(folder, "1.2.826.0.1.3680043.2.1125.1.2", "localiser", 100)
    return folder


def write_dicom_series(folder: Path, uid: str, description: str, first: int, slices: int = 10) -> None:
    """Slices of one series; GDCM's writer switches the process locale to C, so it is restored after."""
    saved = locale.setlocale(locale.LC_ALL)
    try:
        _write_dicom_slices(folder, uid, description, first, slices)
    finally:
        locale.setlocale(locale.LC_ALL, saved)


def _write_dicom_slices(folder: Path, uid: str, description: str, first: int, slices: int) -> None:
    image = sitk.Cast(_volume((16, 16, slices), (1.0, 1.0, 2.0)) * 1000, sitk.sitkInt16)
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    for k in range(slices):
        slice_ = image[:, :, k]
        origin = image.TransformIndexToPhysicalPoint((0, 0, k))
        slice_.SetMetaData("0020|0032", "\\".join(f"{v:f}" for v in origin))
        slice_.SetMetaData("0020|0013", str(k + 1))
        slice_.SetMetaData("0020|000e", uid)
        slice_.SetMetaData("0008|103e", description)
        slice_.SetMetaData("0020|0037", "1\\0\\0\\0\\1\\0")
        slice_.SetMetaData("0008|0060", "MR")
        slice_.SetMetaData("0008|0018", f"{uid}.{k + 1}")
        writer.SetFileName(str(folder / f"im{first + k:04d}.dcm"))
        writer.Execute(slice_)


def _sitk(name: str, make: Callable[[], sitk.Image]) -> Callable[[Path], Path]:
    def build(tmp: Path) -> Path:
        path = tmp / name
        sitk.WriteImage(make(), str(path))
        return path

    return build


def _not_a_brain(tmp: Path) -> Path:
    """A smooth blob: the registration to the template fails, which must be an error, not a heatmap."""
    z, y, x = np.mgrid[:90, :120, :120]
    blob = 100 * np.exp(-(((z - 45) / 20.0) ** 2 + ((y - 60) / 25.0) ** 2 + ((x - 60) / 25.0) ** 2))
    image = sitk.GetImageFromArray(blob.astype(np.float32))
    image.SetSpacing((2.0, 2.0, 2.0))
    sitk.WriteImage(image, str(tmp / "blob.nii.gz"))
    return tmp / "blob.nii.gz"


# name -> (make input in tmp folder, expected words in the error)
CASES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "missing_file": (lambda t: t / "missing.nii.gz", "no such file"),
    "unsupported_extension": (lambda t: _write(t / "scan.png", b"\x89PNG\r\n"), "unsupported file type"),
    "empty_file": (lambda t: _write(t / "empty.nii", b""), "empty"),
    "text_named_nii_gz": (lambda t: _write(t / "notes.nii.gz", b"patient notes\n"), "cannot be read"),
    "truncated_nii_gz": (_truncated, "truncated"),
    "truncated_nii": (_truncated_plain, "truncated"),
    "image_2d": (_sitk("flat.nii.gz", lambda: sitk.GetImageFromArray(np.ones((30, 30), np.float32))), "2D"),
    "image_4d": (
        _sitk("series.nii.gz", lambda: sitk.GetImageFromArray(np.ones((3, 10, 10, 10), np.float32), isVector=False)),
        "4D",
    ),
    "zero_size_axis": (
        lambda t: _raw_nifti(t / "zero.nii.gz", np.zeros(0, np.float32), shape=(20, 20, 0)),
        "too small",
    ),
    "tiny_volume": (_sitk("tiny.nii.gz", lambda: _volume((5, 5, 5))), "too small"),
    "all_zero": (_sitk("zeros.nii.gz", lambda: sitk.Image(20, 20, 20, sitk.sitkFloat32)), "same value"),
    "nan_voxels": (lambda t: _with_value(t / "nan.mha", np.nan), "NaN"),
    "inf_voxels": (lambda t: _with_value(t / "inf.mha", np.inf), "infinite"),
    "singular_affine": (
        lambda t: _raw_nifti(
            t / "singular.nii.gz",
            np.ones((20, 20, 20), np.float32),
            sform=([1.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 0, 0, 0]),
        ),
        "singular",
    ),
    "anisotropic": (_sitk("slab.nii.gz", lambda: _volume(spacing=(1.0, 1.0, 20.0))), "anisotropic"),
    "too_large_for_memory": (
        lambda t: _raw_nifti(t / "huge.nii", np.zeros(10, np.float32), shape=(4000, 4000, 4000)),
        "GB",
    ),
    "zero_spacing_mha": (lambda t: _mha_with_spacing(t / "zero_spacing.mha", "0 1 1"), "not positive"),
    "negative_spacing_mha": (lambda t: _mha_with_spacing(t / "negative_spacing.mha", "-2 1 1"), "not positive"),
    "zero_spacing_nifti": (
        lambda t: _raw_nifti(t / "zero_pixdim.nii.gz", np.ones((20, 20, 20), np.float32), pixdim=(0.0, 1.0, 1.0)),
        "zero",
    ),
    "complex_voxels": (
        lambda t: (
            nib.save(nib.Nifti1Image(np.ones((20, 20, 20), np.complex64), np.eye(4)), str(t / "complex.nii.gz"))
            or t / "complex.nii.gz"
        ),
        "complex",
    ),
    "rgb_voxels": (
        _sitk(
            "rgb.nii.gz",
            lambda: sitk.GetImageFromArray(np.ones((20, 20, 20, 3), np.uint8), isVector=True),
        ),
        "components per voxel",
    ),
    "empty_folder": (lambda t: (t / "empty_dir").mkdir() or t / "empty_dir", "no DICOM series"),
    "dicom_two_series": (_dicom_two_series, "--series"),
    "not_a_brain": (_not_a_brain, "registration"),
}
