"""Reading scans into SimpleITK images.

Every format a user may hand us (NIfTI, NRRD, MetaImage, a DICOM series folder) is read into one
type, ``SimpleITK.Image``, because it carries the geometry (origin, spacing, direction) that every
output must keep. Writing results: :mod:`.write`.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..errors import InputError

SUPPORTED_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd")


def image_suffix(path: str | os.PathLike[str]) -> str:
    """Return the image suffix of ``path`` (``.nii.gz`` counts as one suffix), or ``""``."""
    name = Path(path).name.lower()
    for suffix in SUPPORTED_SUFFIXES:
        if name.endswith(suffix):
            return suffix
    return ""


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    # ITK messages start with a file/line location; the last line names the actual problem.
    return lines[-1] if lines else type(error).__name__


def dicom_series(folder: Path) -> list[tuple[str, str, int]]:
    """(series UID, description, number of files) of every DICOM series in ``folder``."""
    reader = sitk.ImageSeriesReader()
    found = []
    for uid in reader.GetGDCMSeriesIDs(str(folder)):
        files = reader.GetGDCMSeriesFileNames(str(folder), uid)
        description = ""
        try:
            tags = sitk.ImageFileReader()
            tags.SetFileName(files[0])
            tags.ReadImageInformation()
            if tags.HasMetaDataKey("0008|103e"):
                description = tags.GetMetaData("0008|103e").strip()
        except RuntimeError:
            pass
        found.append((uid, description, len(files)))
    return found


def dicom_series_files(folder: Path, series: str | None = None) -> list[str]:
    """The files of one DICOM series in ``folder``, in slice order (``series`` picks one of several)."""
    found = dicom_series(folder)
    if not found:
        raise InputError(f"{folder}: folder holds no DICOM series")
    if series is not None:
        chosen = [s for s in found if s[0] == series]
        if not chosen:
            raise InputError(f"{folder}: no DICOM series {series}; it holds {', '.join(s[0] for s in found)}")
    elif len(found) > 1:
        # Guessing (e.g. the largest) could silently analyse a localiser or another sequence.
        listing = "; ".join(f"{uid} ({desc or 'no description'}, {n} files)" for uid, desc, n in found)
        raise InputError(f"{folder}: holds {len(found)} DICOM series: {listing}; choose one with --series UID")
    else:
        chosen = found
    files = list(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), chosen[0][0]))
    if len(files) < 2:
        raise InputError(f"{folder}: the DICOM series has a single slice; a 3D volume is needed")
    return files


def _read_dicom_series(folder: Path, series: str | None = None) -> sitk.Image:
    from .dicom_checks import check_slice_positions

    files = dicom_series_files(folder, series)
    check_slice_positions(folder, files)  # ITK would average uneven gaps into a wrong spacing
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(files)
    return reader.Execute()


def read_image(path: str | os.PathLike[str], series: str | None = None) -> sitk.Image:
    """Read a 3D scalar scan as float32, keeping its geometry; raise ``InputError`` if unusable.

    Files are checked header-first (size, voxel type, spacing, orientation, completeness; see
    ``input_checks``) so that a bad header is refused before any voxel memory is allocated.
    ``series`` picks one DICOM series when a folder holds several.
    """
    from .input_checks import check_complete, check_finite_nifti, check_header, describe_read_error
    from .path_checks import check_path

    path = Path(path)
    check_path(path)  # a link loop or a broken link is not "no such file"
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    if not os.access(path, os.R_OK | (os.X_OK if path.is_dir() else 0)):
        raise InputError(f"{path}: cannot be read: permission denied; check its permissions")
    warnings_shown = sitk.ProcessObject.GetGlobalWarningDisplay()
    sitk.ProcessObject.SetGlobalWarningDisplay(False)  # ITK warnings would add lines to the one-line error
    try:
        if path.is_dir():
            image = _read_dicom_series(path, series)
        else:
            if not image_suffix(path):
                raise InputError(
                    f"{path}: unsupported file type; use NIfTI (.nii, .nii.gz), NRRD, MHA/MHD or a DICOM series folder"
                )
            if path.stat().st_size == 0:
                raise InputError(f"{path}: the file is empty (0 bytes)")
            check_header(path)
            check_complete(path)
            if path.name.lower().endswith((".nii", ".nii.gz")):
                check_finite_nifti(path)  # before ITK, which reads NaN as 0: a silent fake lesion
            image = sitk.ReadImage(str(path))
    except RuntimeError as error:
        raise InputError(f"{path}: {describe_read_error(error)}") from None
    finally:
        sitk.ProcessObject.SetGlobalWarningDisplay(warnings_shown)
    return _as_scalar_volume(image, path)


def _as_scalar_volume(image: sitk.Image, path: Path) -> sitk.Image:
    from .input_checks import check_geometry

    if image.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(
            f"{path}: has {image.GetNumberOfComponentsPerPixel()} components per voxel; a scalar (grey-level) scan is needed"
        )
    check_geometry(path, image.GetSize(), image.GetSpacing(), image.GetDirection(), image.GetDimension())
    if image.GetDimension() == 4:
        image = image[:, :, :, 0]
    image = sitk.Cast(image, sitk.sitkFloat32)
    values = sitk.GetArrayViewFromImage(image)
    if not np.isfinite(values).all():
        raise InputError(f"{path}: contains NaN or infinite values; replace them (e.g. with 0) and save again")
    if float(values.max()) <= float(values.min()):
        raise InputError(f"{path}: every voxel has the same value; the scan is empty")
    return image


def geometry(image: sitk.Image) -> dict[str, list[float] | list[int]]:
    """The geometry of an image as plain lists (for summaries and comparisons)."""
    return {
        "size": list(image.GetSize()),
        "origin": list(image.GetOrigin()),
        "spacing": list(image.GetSpacing()),
        "direction": list(image.GetDirection()),
    }
