"""Checks on a scan file made before (and right after) its voxels are read.

Why a separate step: a bad header can make a reader allocate tens of gigabytes (a header claiming
4000^3 voxels), silently fill a truncated gzip stream with zeros, or turn a zero voxel size into
1 mm. Each of those would give a wrong result or kill the machine instead of a clear message, so
the header is read first (SimpleITK's ``ReadImageInformation`` reads no voxel data) and refused
with one line naming the file and what to do.
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..errors import InputError
from .nifti_orientation import check_itk_agrees, check_nifti_orientation, check_orientation_set

MAX_VOXELS = 400_000_000  # 0.5 mm isotropic whole head is ~1e8; beyond this it is not a brain MRI we can use
BYTES_PER_VOXEL_AT_PEAK = 24  # float32 copy, resampled copies, masks and heatmaps held at once
MAX_SPACING_MM = 6.0  # thickest slice accepted: routine clinical 2D protocols use 3-6 mm
MAX_ANISOTROPY = 16.0  # largest / smallest voxel side: 0.4 mm in-plane with 6 mm slices passes, 1x1x20 mm slabs do not
MIN_SIZE = 8

__all__ = ["check_complete", "check_finite_nifti", "check_geometry", "check_header", "memory_limit_bytes"]


def memory_limit_bytes() -> int:
    """Memory a scan may use: what the machine has available now (``LATENT_ANOMALY_MAX_BYTES`` overrides)."""
    override = os.environ.get("LATENT_ANOMALY_MAX_BYTES")
    if override:
        return int(float(override))
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:  # psutil is a dependency, but never fail a read because it is missing
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))


def _fmt(values: Sequence[float]) -> str:
    return "x".join(f"{v:g}" for v in values)


def check_geometry(
    path: Path, size: Sequence[int], spacing: Sequence[float], direction: Sequence[float], dimension: int
) -> None:
    """Refuse grids the detector cannot work on: too small, bad voxel sizes, singular orientation."""
    spatial = 3 if dimension >= 3 else dimension
    if dimension < 3:
        raise InputError(f"{path}: is {dimension}D; a 3D volume is needed")
    if dimension > 4:
        raise InputError(f"{path}: is {dimension}D; give one 3D volume")
    if dimension == 4 and size[3] != 1:
        raise InputError(f"{path}: is a 4D series with {size[3]} volumes; give one 3D volume")
    if min(size[:spatial]) < MIN_SIZE:
        raise InputError(f"{path}: size {_fmt(size[:spatial])} is too small for a brain scan (an axis has < 8 voxels)")
    sides = [float(s) for s in spacing[:spatial]]
    if not all(math.isfinite(s) and s > 0 for s in sides):
        raise InputError(
            f"{path}: voxel size {_fmt(sides)} mm is not positive; the header is corrupted, fix its spacing"
        )
    if max(sides) > MAX_SPACING_MM:
        raise InputError(
            f"{path}: voxel size {_fmt(sides)} mm is too coarse or anisotropic: {max(sides):g} mm slices are "
            f"thicker than the {MAX_SPACING_MM:g} mm limit (lesions between slices cannot be seen); "
            "use an acquisition with thinner slices or a 3D scan"
        )
    if max(sides) / min(sides) > MAX_ANISOTROPY:
        raise InputError(
            f"{path}: voxel size {_fmt(sides)} mm is too anisotropic (largest/smallest side "
            f"{max(sides) / min(sides):.1f} > {MAX_ANISOTROPY:g}); resample to less anisotropic voxels"
        )
    d = len(direction)
    n = int(round(math.sqrt(d)))
    matrix = np.asarray(direction, dtype=float).reshape(n, n)[:spatial, :spatial]
    if not np.all(np.isfinite(matrix)) or abs(abs(np.linalg.det(matrix)) - 1.0) > 1e-3:
        raise InputError(
            f"{path}: the orientation matrix is singular or not orthonormal; fix the header's orientation "
            "(NIfTI qform/sform) before detection"
        )


def _check_pixels(path: Path, pixel_id: int, components: int) -> None:
    name = sitk.GetPixelIDValueAsString(pixel_id)
    if "complex" in name:
        raise InputError(f"{path}: holds complex-valued voxels ({name}); give a magnitude image")
    if components != 1:
        raise InputError(
            f"{path}: has {components} components per voxel ({name}, e.g. RGB or vectors); "
            "a scalar (grey-level) scan is needed"
        )


def _check_memory(path: Path, size: Sequence[int]) -> None:
    voxels = int(np.prod([int(s) for s in size], dtype=np.float64))
    needed = voxels * BYTES_PER_VOXEL_AT_PEAK
    available = memory_limit_bytes()
    if voxels > MAX_VOXELS or needed > available:
        raise InputError(
            f"{path}: {_fmt(size)} voxels would need about {needed / 1e9:.1f} GB "
            f"(available {available / 1e9:.1f} GB); downsample the scan or crop it to the head"
        )


def check_header(path: Path) -> sitk.ImageFileReader:
    """Read only the header of ``path`` and refuse what cannot be a usable 3D scan; return the reader."""
    nifti = path.name.lower().endswith((".nii", ".nii.gz"))
    if nifti:
        _check_nifti_spacing(path)  # first: the NIfTI reader would print a warning and use 1 mm
        check_nifti_orientation(path)  # a sheared sform: ITK would silently take the qform instead
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError as error:
        raise InputError(f"{path}: {describe_read_error(error)}") from None
    _check_pixels(path, reader.GetPixelID(), reader.GetNumberOfComponents())
    check_geometry(path, reader.GetSize(), reader.GetSpacing(), reader.GetDirection(), reader.GetDimension())
    if nifti:
        check_itk_agrees(path, reader.GetOrigin(), reader.GetSpacing(), reader.GetDirection())
    _check_memory(path, reader.GetSize())
    if nifti:
        check_orientation_set(path)  # after the size checks: a 4000^3 header is refused for its size first
    return reader


def _check_nifti_spacing(path: Path) -> None:
    """ITK turns a zero NIfTI voxel size into 1 mm silently; refuse it when the spacing comes from pixdim."""
    import nibabel as nib

    try:
        header = nib.load(str(path)).header
    except Exception:  # not a NIfTI nibabel can parse: ITK's header read decides and reports
        return
    if int(header["sform_code"]) > 0:
        return
    ndim = min(int(header["dim"][0]), 3)
    pixdim = [float(v) for v in header["pixdim"][1 : ndim + 1]]
    if not all(math.isfinite(v) and v != 0 for v in pixdim):
        raise InputError(f"{path}: voxel size {_fmt(pixdim)} mm in the header is zero or not a number; fix pixdim")


META_BYTES = {"MET_CHAR": 1, "MET_UCHAR": 1, "MET_SHORT": 2, "MET_USHORT": 2, "MET_INT": 4, "MET_UINT": 4}
META_BYTES |= {"MET_LONG": 4, "MET_ULONG": 4, "MET_LONG_LONG": 8, "MET_ULONG_LONG": 8}
META_BYTES |= {"MET_FLOAT": 4, "MET_DOUBLE": 8}


def _meta_header(path: Path) -> tuple[dict[str, str], int]:
    """MetaImage header fields and the byte offset where the header ends (the ElementDataFile line)."""
    fields: dict[str, str] = {}
    offset = 0
    with open(path, "rb") as handle:
        for raw in iter(lambda: handle.readline(1 << 16), b""):
            offset += len(raw)
            key, _, value = raw.decode("latin-1").partition("=")
            fields[key.strip()] = value.strip()
            if key.strip() == "ElementDataFile" or offset > 1 << 20:
                break
    return fields, offset


def check_meta_data_file(path: Path) -> None:
    """Refuse a MetaImage whose voxel data is short, missing, or stored outside the header's folder."""
    fields, header_end = _meta_header(path)
    data = fields.get("ElementDataFile", "")
    try:
        voxels = int(np.prod([int(v) for v in fields.get("DimSize", "").split()], dtype=np.int64))
        channels = int(fields.get("ElementNumberOfChannels", "1"))
    except ValueError:
        return  # ITK's header read has accepted or refused it already
    if fields.get("CompressedData", "False").lower() == "true" or not data or data.split()[0] == "LIST" or "%" in data:
        return
    expected = voxels * channels * META_BYTES.get(fields.get("ElementType", ""), 0)
    if data == "LOCAL":
        available = path.stat().st_size - header_end
        where = "the file"
    else:
        target = Path(data)
        if target.is_absolute() or ".." in target.parts:
            raise InputError(
                f"{path}: its ElementDataFile {data!r} lies outside the header's folder; keep the data file beside "
                "the header (or save as a single .mha)"
            )
        target = path.parent / target
        if not target.is_file():
            raise InputError(f"{path}: the data file {data!r} named by ElementDataFile is missing; copy it beside the header")
        available = target.stat().st_size
        where = f"the data file {data!r}"
    if available < expected:
        raise InputError(
            f"{path}: {where} is truncated ({max(available, 0)} of {expected} bytes of image data); copy it again"
        )


def check_complete(path: Path) -> None:
    """Refuse truncated or corrupted files that a reader would otherwise pad with zeros."""
    name = path.name.lower()
    if name.endswith((".mha", ".mhd")):
        check_meta_data_file(path)
    expected = _nifti_data_end(path) if name.endswith((".nii", ".nii.gz")) else None
    if name.endswith(".gz"):
        total = 0
        try:
            with gzip.open(path, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 22), b""):
                    total += len(block)
        except (EOFError, OSError, zlib.error) as error:
            raise InputError(
                f"{path}: the compressed file is truncated or corrupted ({error}); copy it again"
            ) from None
    else:
        total = path.stat().st_size
    if expected is not None and total < expected:
        raise InputError(f"{path}: the file is truncated ({total} of {expected} bytes of image data); copy it again")


def check_finite_nifti(path: Path) -> None:
    """Refuse NaN or infinite voxels in a floating-point NIfTI, read raw (SimpleITK's reader turns NaN into 0)."""
    import nibabel as nib

    try:
        image = nib.load(str(path))
    except Exception:  # not a NIfTI nibabel can parse: ITK's reader decides and reports
        return
    if not np.issubdtype(image.header.get_data_dtype(), np.floating):
        return
    raw = np.asanyarray(image.dataobj.get_unscaled())
    if not np.isfinite(raw).all():
        bad = int(raw.size - np.count_nonzero(np.isfinite(raw)))
        raise InputError(
            f"{path}: contains NaN or infinite values ({bad} voxels); replace them (e.g. with 0) and save again"
        )


def _nifti_data_end(path: Path) -> int | None:
    import nibabel as nib

    try:
        header = nib.load(str(path)).header
    except Exception:  # the header was already accepted by ITK; nibabel may be stricter
        return None
    shape = header.get_data_shape()
    itemsize = header.get_data_dtype().itemsize
    return int(header.get_data_offset()) + int(np.prod(shape, dtype=np.int64)) * itemsize


_READ_ERRORS = (
    ("orthonormal direction cosines", "the orientation matrix (NIfTI qform/sform) is singular; fix the header"),
    ("Unable to determine ImageIO reader", "cannot be read as an image (not a supported image file, or corrupted)"),
    ("Permission denied", "cannot be read: permission denied; check the file's permissions"),
    ("Failed to allocate memory", "is too large to fit in memory; downsample or crop it"),
)


def describe_read_error(error: BaseException) -> str:
    """A reader's error as a short phrase a user can act on (ITK messages end with the real problem)."""
    text = str(error)
    for needle, phrase in _READ_ERRORS:
        if needle in text:
            return phrase
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return f"cannot be read as an image ({lines[-1] if lines else type(error).__name__})"
