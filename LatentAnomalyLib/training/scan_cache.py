"""Preprocessed and encoded scans cached on disk, so cross-fitting and benchmarks compute each scan once.

Each scan goes through the bundle's own :class:`~LatentAnomalyLib.pipeline.Detector` (preprocessing,
then the encoder on the scan and on its mirrored copy, exactly what ``detect`` runs). The cache keeps
the model-grid image and mask, the affine transform, the native brain mask and both latent maps in one
``.npz`` per scan; :func:`load` rebuilds the :class:`Preprocessed` and :class:`EncodedScan` objects that
``Detector._finish`` consumes, so any scorer can then be applied without preprocessing again. The cache
is keyed by the model's name and version and is a working file (``runs/``), never part of a bundle.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..io.read import read_image
from ..pipeline import Detector
from ..preprocess.chain import Preprocessed
from ..preprocess.registration import affine_from_arrays, affine_to_arrays
from ..score.base import EncodedScan


@dataclass
class CachedScan:
    """One scan ready for ``Detector._finish``: its image, preprocessing and encodings."""

    case_id: str
    image: sitk.Image
    pre: Preprocessed
    encoded: EncodedScan


def cache_path(folder: Path, case_id: str) -> Path:
    return Path(folder) / f"{case_id}.npz"


def store(detector: Detector, image_path: Path, target: Path, image: sitk.Image | None = None) -> None:
    """Preprocess and encode one scan with ``detector`` and write the cache file (atomically)."""
    image = read_image(image_path) if image is None else image
    pre = detector.preprocess(image, {})
    encoded = detector.encode(pre, reconstruction=False, mirrored=True)
    matrix, translation = affine_to_arrays(pre.transform)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp.npz")
    np.savez_compressed(
        tmp,
        image=pre.image.astype(np.float32),
        mask=pre.mask,
        native_mask=pre.native_mask,
        matrix=matrix,
        translation=translation,
        skull_stripped=np.asarray(pre.skull_stripped),
        info_keys=np.asarray(list(pre.info)),
        info_values=np.asarray([float(v) for v in pre.info.values()]),
        latent=encoded.latent,
        mirrored_latent=encoded.mirrored_latent,
    )
    tmp.replace(target)


def load(target: Path, image_path: Path, case_id: str, image: sitk.Image | None = None) -> CachedScan:
    """The cached scan, with its native image re-read from ``image_path`` (or given as ``image``)."""
    data = np.load(target)
    image = read_image(image_path) if image is None else image
    pre = Preprocessed(
        image=data["image"],
        mask=data["mask"].astype(bool),
        transform=affine_from_arrays(data["matrix"], data["translation"]),
        native=image,
        native_mask=data["native_mask"].astype(bool),
        skull_stripped=bool(data["skull_stripped"]),
        info={str(k): float(v) for k, v in zip(data["info_keys"], data["info_values"])},
    )
    encoded = EncodedScan(pre.image, pre.mask, data["latent"], subject=case_id)
    encoded.mirrored_latent = data["mirrored_latent"]
    return CachedScan(case_id, image, pre, encoded)


def cached(detector: Detector, folder: Path, case_id: str, image_path: Path) -> CachedScan:
    """Load ``case_id`` from ``folder``, computing and storing it first if it is not there."""
    target = cache_path(folder, case_id)
    image = read_image(image_path)
    if not target.is_file():
        store(detector, image_path, target, image)
    return load(target, image_path, case_id, image)
