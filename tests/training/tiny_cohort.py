"""A tiny healthy "site" for calibration tests: the committed IXI sample under simple, fixed transforms.

Each transform keeps the scan a plausible healthy T1 (an intensity gain and offset, a gamma, a little noise, a
slight blur, a smooth bias field) so every copy passes the input checks; they differ enough that their scores
differ. Written as float32 NIfTI with the sample's geometry.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from tests.conftest import SAMPLES

IXI_SAMPLE = SAMPLES / "IXI_sample_T1.nii.gz"


def _bias(x: np.ndarray) -> np.ndarray:
    z = np.linspace(-1.0, 1.0, x.shape[0])[:, None, None]
    return x * (1.0 + 0.15 * z)


TRANSFORMS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "gain": lambda x: 1.3 * x + 5.0,
    "gamma": lambda x: x.max() * (x / x.max()) ** 0.85,
    "noise": lambda x: x + np.random.default_rng(1).normal(0.0, 0.02 * float(x.max()), x.shape),
    "blur": lambda x: sitk.GetArrayFromImage(sitk.SmoothingRecursiveGaussian(sitk.GetImageFromArray(x), 1.0)),
    "bias": _bias,
}


def write_site(folder: Path, names: list[str] | None = None) -> list[Path]:
    """``folder/<transform>.nii.gz`` for each transform in ``names`` (default: all)."""
    folder.mkdir(parents=True, exist_ok=True)
    image = sitk.ReadImage(str(IXI_SAMPLE), sitk.sitkFloat32)
    array = sitk.GetArrayFromImage(image).astype(np.float64)
    paths = []
    for name in names or list(TRANSFORMS):
        out = sitk.GetImageFromArray(np.clip(TRANSFORMS[name](array), 0.0, None).astype(np.float32))
        out.CopyInformation(image)
        path = folder / f"{name}.nii.gz"
        sitk.WriteImage(out, str(path))
        paths.append(path)
    return paths
