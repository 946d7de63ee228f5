"""Checks on the slices of a DICOM series before ITK stacks them into a volume.

ITK's series reader stacks whatever files it is given and, when slice positions are uneven, uses
their average spacing (2.02 mm instead of 2 with one slice missing) after a warning that the
one-line error display must hide. Every distance and volume would then be silently wrong, so the
positions are checked here and an uneven series is refused with the reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..errors import InputError

__all__ = ["check_slice_positions"]


def _slice_tags(file: str) -> tuple[np.ndarray, np.ndarray] | None:
    """(ImagePositionPatient, ImageOrientationPatient) of one file, or None if it has no usable tags."""
    tags = sitk.ImageFileReader()
    tags.SetFileName(file)
    try:
        tags.ReadImageInformation()
        position = [float(v) for v in tags.GetMetaData("0020|0032").split("\\")]
        orientation = [float(v) for v in tags.GetMetaData("0020|0037").split("\\")]
    except (RuntimeError, ValueError):
        return None
    if len(position) != 3 or len(orientation) != 6:
        return None
    return np.asarray(position), np.asarray(orientation)


def check_slice_positions(folder: Path, files: Sequence[str]) -> None:
    """Refuse a series whose slices are not evenly spaced: a missing, duplicated or out-of-series slice.

    Positions are projected on the slice normal; gaps may differ by 1% (rounding in the headers),
    at least 0.01 mm. Files without position tags (e.g. one multi-frame file) are left to ITK.
    """
    tags = [_slice_tags(f) for f in files]
    if len(tags) < 2 or any(t is None for t in tags):
        return
    orientation = tags[0][1]
    normal = np.cross(orientation[:3], orientation[3:])
    positions = np.sort([float(np.dot(p, normal)) for p, _ in tags])
    gaps = np.diff(positions)
    step = float(np.median(gaps))
    if float(gaps.min()) <= 1e-3:
        where = float(positions[int(np.argmin(gaps))])
        raise InputError(
            f"{folder}: two slices share the position {where:.2f} mm along the slice normal (a duplicated slice); "
            "export the series again"
        )
    uneven = np.flatnonzero(np.abs(gaps - step) > max(0.01 * step, 0.01))
    if uneven.size:
        k = int(uneven[0])
        raise InputError(
            f"{folder}: slices are not evenly spaced ({gaps[k]:.2f} mm between positions {positions[k]:.2f} and "
            f"{positions[k + 1]:.2f} mm, {step:.2f} mm elsewhere): a slice is missing or belongs to another "
            "acquisition; export the complete series again"
        )
