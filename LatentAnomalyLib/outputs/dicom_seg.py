"""A label map as a DICOM Segmentation object (SEG) that references the DICOM series it was detected on.

Uses highdicom (the optional ``dicom`` extra). The SEG is BINARY with one segment, "Anomaly"
(category Morphologically Abnormal Structure, type Lesion, SNOMED CT; anatomic region Brain), made
by an automatic algorithm identified by the model's name and version. Each frame is derived from
one source instance: the label-map slice that instance's ImagePositionPatient falls on, so the file
order of the series and the label map's slice direction do not matter. Frames without flagged
voxels are omitted (highdicom's default); a reader treats a missing frame as empty.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from .. import __version__
from ..errors import InputError
from ..io.read import dicom_series_files
from ..io.write import atomic_path
from .dicom_sources import SegSources, SegUnavailable, build_segmentation, seg_sources
from .library_messages import library_messages

INSTALL_HINT = "pip install latent-anomaly[dicom]"
SEG_NAME = "labelmap.seg.dcm"
GRID_TOLERANCE = 0.01  # voxels: how far a source slice may sit from a label-map slice (NIfTI stores float32)


def require_highdicom() -> None:
    """Raise ``InputError`` (one line, with the install command) when highdicom is not installed."""
    try:
        import highdicom  # noqa: F401
        import pydicom  # noqa: F401
    except ImportError:
        raise InputError(f"DICOM SEG export needs highdicom: {INSTALL_HINT}") from None


def check_dicom_seg_input(input_path: str | os.PathLike[str]) -> None:
    """Refuse a SEG request for an input that is not a DICOM series folder, or without highdicom."""
    if not Path(input_path).is_dir():
        raise InputError(
            f"{input_path}: --dicom-seg needs a DICOM series folder as input (a DICOM SEG must reference "
            "the DICOM images it was made from); this input is a file"
        )
    require_highdicom()


def _source_files(source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]], series: str | None) -> list[str]:
    if isinstance(source, (str, os.PathLike)):
        folder = Path(source)
        if not folder.is_dir():
            raise InputError(f"{folder}: not a DICOM series folder")
        return dicom_series_files(folder, series)
    return [str(f) for f in source]


def _series_grid(datasets: Sequence[Any]) -> sitk.Image:
    """An empty image on the series' grid as SimpleITK reads it: slices in ascending order along the normal."""
    orientation = np.array([float(v) for v in datasets[0].ImageOrientationPatient])
    normal = np.cross(orientation[:3], orientation[3:])
    positions = np.array([[float(v) for v in d.ImagePositionPatient] for d in datasets])
    along = np.sort(positions @ normal)
    order = np.argsort(positions @ normal)
    rows_mm, columns_mm = (float(v) for v in datasets[0].PixelSpacing)
    grid = sitk.Image(int(datasets[0].Columns), int(datasets[0].Rows), len(datasets), sitk.sitkUInt8)
    grid.SetOrigin(positions[order[0]].tolist())
    grid.SetSpacing((columns_mm, rows_mm, float(np.mean(np.diff(along))) if len(along) > 1 else 1.0))
    grid.SetDirection(np.column_stack([orientation[:3], orientation[3:], normal]).ravel().tolist())
    return grid


def _as_image(labelmap: str | os.PathLike[str] | sitk.Image | np.ndarray, datasets: Sequence[Any]) -> sitk.Image:
    if isinstance(labelmap, sitk.Image):
        return labelmap
    if isinstance(labelmap, np.ndarray):
        grid = _series_grid(datasets)
        if labelmap.shape != grid.GetSize()[::-1]:
            raise InputError(
                f"label map array of shape {labelmap.shape} does not match the DICOM series "
                f"(z, y, x) = {grid.GetSize()[::-1]}"
            )
        image = sitk.GetImageFromArray(np.ascontiguousarray(labelmap))
        image.CopyInformation(grid)
        return image
    path = Path(labelmap)
    if not path.is_file():
        raise InputError(f"{path}: no such label map file")
    return sitk.ReadImage(str(path))


def _slice_indices(image: sitk.Image, datasets: Sequence[Any]) -> list[int]:
    """The label-map slice index of every source instance; refuse sources that are not on its grid."""
    direction = np.array(image.GetDirection()).reshape(3, 3)
    columns, rows, depth = image.GetSize()
    indices = []
    for dataset in datasets:
        orientation = np.array([float(v) for v in dataset.ImageOrientationPatient])
        spacing = [float(v) for v in dataset.PixelSpacing]  # (between rows, between columns)
        same_plane = (
            np.allclose(orientation[:3], direction[:, 0], atol=1e-4)
            and np.allclose(orientation[3:], direction[:, 1], atol=1e-4)
            and np.allclose(spacing[::-1], image.GetSpacing()[:2], rtol=1e-4)
            and (int(dataset.Rows), int(dataset.Columns)) == (rows, columns)
        )
        point = image.TransformPhysicalPointToContinuousIndex([float(v) for v in dataset.ImagePositionPatient])
        k = round(point[2])
        if not same_plane or max(abs(point[0]), abs(point[1]), abs(point[2] - k)) > GRID_TOLERANCE or not 0 <= k < depth:
            raise InputError(
                f"{dataset.filename}: the label map is not on this DICOM series' grid (size, spacing, orientation "
                "or position differ); give the label map detected on this series"
            )
        indices.append(k)
    if len(set(indices)) != len(indices):
        raise InputError("two source instances lie on the same label-map slice; the DICOM series is inconsistent")
    return indices


def seg_source_files(input_path: str | os.PathLike[str], series: str | None = None) -> list[str]:
    """The files of the series a SEG of ``input_path`` would reference (after :func:`check_dicom_seg_input`)."""
    return _source_files(input_path, series)


def write_dicom_seg(
    labelmap: str | os.PathLike[str] | sitk.Image | np.ndarray,
    source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    destination: str | os.PathLike[str],
    *,
    model_name: str = "latent-anomaly",
    model_version: str = __version__,
    series: str | None = None,
    parameters: Mapping[str, Any] | None = None,
    series_number: int | None = None,
    series_description: str = "LatentAnomaly anomalies",
    sources: SegSources | None = None,
    series_instance_uid: str | None = None,
    sop_instance_uid: str | None = None,
) -> Path:
    """Write ``labelmap`` (non-zero = anomaly) as a BINARY DICOM SEG referencing ``source``; return its path.

    ``labelmap``: a label-map file (e.g. ``labelmap.nii.gz`` from ``detect``) or a SimpleITK image on the
    source series' grid, or a (z, y, x) numpy array ordered like SimpleITK's array of that series.
    ``source``: the DICOM series folder (``series`` picks one SeriesInstanceUID when it holds several) or
    the list of the series' files. ``sources``: their headers as :func:`.dicom_sources.seg_sources` completed them
    (read here when not given). ``model_name``/``model_version`` identify the algorithm in the SEG;
    ``parameters`` (e.g. scorer and threshold) are recorded with it; ``series_instance_uid``/``sop_instance_uid``
    (default: new ones) let a caller store the same object again without a duplicate. The file is written
    atomically (temporary file renamed into place). Raises ``InputError`` with one line when highdicom is missing,
    the source is unusable (:class:`.dicom_sources.SegUnavailable`) or the label map is not on the source's grid.
    Library warnings go to ``sources.notes``, never to stderr.
    """
    require_highdicom()
    if sources is None:
        sources = seg_sources(_source_files(source, series))
    datasets = sources.datasets
    image = _as_image(labelmap, datasets)
    indices = _slice_indices(image, datasets)
    volume = sitk.GetArrayViewFromImage(image)
    frames = np.stack([volume[k] != 0 for k in indices]).astype(np.uint8)
    with library_messages(sources.notes):
        try:
            seg = build_segmentation(
                datasets, frames, model_name, str(model_version),
                parameters={str(k): str(v) for k, v in (parameters or {}).items()},
                series_number=series_number, series_instance_uid=series_instance_uid,
                sop_instance_uid=sop_instance_uid,
            )  # fmt: skip
        except (ValueError, TypeError, AttributeError, KeyError) as error:
            raise SegUnavailable(f"cannot make a DICOM SEG from this series: {str(error).splitlines()[0]}") from None
        seg.SeriesDescription = series_description
        with atomic_path(destination) as tmp:
            seg.save_as(tmp)
    return Path(destination)
