"""Writing results atomically: a temporary file in the destination folder, renamed into place.

A crash never leaves a half-written result behind, and a reader never sees one.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from ..errors import InputError
from .read import image_suffix


def copy_geometry(array: np.ndarray, reference: sitk.Image) -> sitk.Image:
    """Wrap a (z, y, x) numpy array as an image on ``reference``'s grid."""
    image = sitk.GetImageFromArray(array)
    image.CopyInformation(reference)
    return image


@contextlib.contextmanager
def atomic_path(destination: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``destination``; rename it into place only on success."""
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    suffix = image_suffix(destination) or destination.suffix
    fd, tmp_name = tempfile.mkstemp(prefix=f".{destination.name}.", suffix=f".partial{suffix}", dir=destination.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, destination)
    finally:
        tmp.unlink(missing_ok=True)


def write_image(image: sitk.Image, destination: str | os.PathLike[str], compress: bool = True) -> Path:
    """Write ``image`` atomically; the format follows the destination's suffix."""
    if not image_suffix(destination):
        raise InputError(f"{destination}: unsupported output type; use .nii.gz, .nii, .nrrd or .mha")
    with atomic_path(destination) as tmp:
        sitk.WriteImage(image, str(tmp), useCompression=compress)
    return Path(destination)


def write_json(data: Any, destination: str | os.PathLike[str]) -> Path:
    """Write JSON atomically (indented, trailing newline)."""
    with atomic_path(destination) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
    return Path(destination)
