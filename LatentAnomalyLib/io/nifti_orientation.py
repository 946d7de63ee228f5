"""A NIfTI's two orientations (qform, sform) must put the scan in one place, or it is refused.

Why: a NIfTI header may carry two voxel-to-world maps. nibabel and FSL use the sform when its code is set, ITK
(and with it Slicer and this tool) picks by its own rules, falling back to the qform when the sform has a shear it
cannot represent as origin, spacing and direction. A file whose two maps disagree, or whose sform is sheared, is
therefore read in different places by different readers, and results written in ITK's geometry land up to tens of
millimetres away from the scan in a sform reader. Guessing which map the user meant could silently misplace every
finding, so such a file is refused, naming the disagreement; a file where every map agrees within
``TOLERANCE_MM`` (far above float rounding, far below a voxel) passes.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError

TOLERANCE_MM = 0.1  # largest distance between two readers' placement of any corner of the volume
SHEAR_TOLERANCE = 1e-4  # |cos| of the angle between two sform axes (0.006 degrees from square)
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])

__all__ = ["check_itk_agrees", "check_nifti_orientation", "check_orientation_set"]


def _corners(shape: Sequence[int]) -> np.ndarray:
    """The 8 corner voxel indices of a 3D grid as homogeneous columns (4 x 8)."""
    ends = [(0, max(int(n) - 1, 0)) for n in list(shape)[:3]]
    points = np.array(list(itertools.product(*ends)), dtype=float).T
    return np.vstack([points, np.ones(points.shape[1])])


def _distance(a: np.ndarray, b: np.ndarray, shape: Sequence[int]) -> float:
    """Largest distance (mm) between where two affines put the corners of the grid."""
    corners = _corners(shape)
    return float(np.max(np.linalg.norm((a @ corners - b @ corners)[:3], axis=0)))


def _shear_degrees(affine: np.ndarray) -> float:
    """Largest departure from 90 degrees between two axes of an affine (0 for origin, spacing and direction)."""
    axes = affine[:3, :3] / np.linalg.norm(affine[:3, :3], axis=0)
    cosines = np.abs(axes.T @ axes - np.eye(3))
    return float(np.degrees(np.arcsin(np.clip(cosines.max(), 0.0, 1.0))))


def _header(path: Path) -> Any:  # nibabel's header, imported lazily
    import nibabel as nib

    try:
        return nib.load(str(path)).header
    except Exception:  # not a NIfTI nibabel can parse: ITK's header read decides and reports
        return None


def check_nifti_orientation(path: Path) -> None:
    """Before ITK reads it: refuse a sform with shear (ITK would replace it with the qform, or fail)."""
    header = _header(path)
    if header is None or int(header["sform_code"]) <= 0:
        return
    sform = header.get_sform()
    if not np.all(np.isfinite(sform)) or abs(np.linalg.det(sform[:3, :3])) < 1e-12:
        return  # a singular sform: ITK's read refuses it with its own reason
    degrees = _shear_degrees(sform)
    if np.sin(np.radians(degrees)) > SHEAR_TOLERANCE:
        shape = header.get_data_shape()
        other = header.get_qform() if int(header["qform_code"]) > 0 else None
        apart = f"; its qform puts the scan up to {_distance(sform, other, shape):.1f} mm elsewhere" if other is not None else ""
        raise InputError(
            f"{path}: its sform has a shear (two axes {degrees:.2f} degrees from square), which cannot be stored as "
            f"origin, spacing and direction: ITK-based readers (Slicer, this tool) cannot place it as nibabel and FSL "
            f"do{apart}; resample the scan onto a grid without shear (e.g. with FSL's flirt -applyxfm or ANTs) first"
        )


def check_itk_agrees(
    path: Path, origin: Sequence[float], spacing: Sequence[float], direction: Sequence[float]
) -> None:
    """After ITK's header read: where ITK puts the voxels must be where the sform and the qform put them."""
    header = _header(path)
    if header is None:
        return
    shape = header.get_data_shape()
    n = int(round(len(direction) ** 0.5))
    matrix = np.asarray(direction, dtype=float).reshape(n, n)[:3, :3] * np.asarray(spacing, dtype=float)[:3]
    itk = np.eye(4)
    itk[:3, :3] = LPS_TO_RAS @ matrix
    itk[:3, 3] = LPS_TO_RAS @ np.asarray(origin, dtype=float)[:3]
    maps = {}
    if int(header["sform_code"]) > 0:
        maps["sform"] = header.get_sform()
    if int(header["qform_code"]) > 0:
        maps["qform"] = header.get_qform()
    if not maps or not all(np.all(np.isfinite(m)) for m in maps.values()):
        return
    if len(maps) == 2:
        apart = _distance(maps["sform"], maps["qform"], shape)
        if apart > TOLERANCE_MM:
            raise InputError(
                f"{path}: its sform and qform disagree, placing the scan up to {apart:.1f} mm apart (nibabel and "
                "FSL use the sform, ITK-based readers such as Slicer may use the qform), so results would not sit on "
                "the scan in every viewer; make the two agree (e.g. copy the sform into the qform) before detection"
            )
    for name, affine in maps.items():
        apart = _distance(itk, affine, shape)
        if apart > TOLERANCE_MM:
            raise InputError(
                f"{path}: ITK reads this header {apart:.1f} mm away from its {name} (its voxel sizes or orientation "
                "do not match pixdim), so results would not sit on the scan in every viewer; rewrite the header "
                "with one consistent orientation before detection"
            )


def check_orientation_set(path: Path) -> None:
    """Refuse a NIfTI that sets no orientation at all: ITK puts it at the origin in its own axes, nibabel and FSL
    centre it with other axes, so no output could sit on it in every reader."""
    header = _header(path)
    if header is None or int(header["qform_code"]) > 0 or int(header["sform_code"]) > 0:
        return
    raise InputError(
        f"{path}: its header sets no orientation (qform_code and sform_code are both 0): readers place such a scan "
        "differently (ITK at the origin, nibabel and FSL centred on it), so results could not sit on it in every "
        "viewer; re-export the scan with its orientation (or set its qform and sform)"
    )
