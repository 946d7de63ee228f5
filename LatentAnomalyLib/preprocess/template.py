"""The model grid and the template images that live on it.

The model grid is a fixed 2 mm box in MNI152 space (identity direction, LPS coordinates). The
ICBM 2009a T1 brain template and its grey/white-matter probability maps are resampled onto it once,
at training time, and stored in the model bundle as NIfTI files: detection then needs nothing
outside the bundle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..bundle.configs import GridConfig
from ..bundle.format import Bundle, BundleError
from .geometry import resample


@dataclass
class Template:
    """Template images on the model grid, as float32 arrays in (z, y, x) order."""

    t1: np.ndarray
    gm: np.ndarray
    wm: np.ndarray
    grid: GridConfig = field(default_factory=GridConfig)

    @property
    def mask(self) -> np.ndarray:
        return self.t1 > 0

    def as_image(self, name: str) -> sitk.Image:
        image = sitk.GetImageFromArray(getattr(self, name).astype(np.float32))
        image.CopyInformation(self.grid.image())
        return image

    @classmethod
    def load(cls, bundle: Bundle, files: dict[str, str], grid: GridConfig) -> Template:
        """Read the templates named by ``files`` from ``bundle``: only files its manifest lists (and verified)."""
        arrays = {}
        for name in ("t1", "gm", "wm"):
            path = bundle.path(files[name])
            try:
                image = sitk.ReadImage(str(path))
            except RuntimeError:
                raise BundleError(f"{path}: template {name} cannot be read as an image") from None
            values = sitk.GetArrayFromImage(image).astype(np.float32)
            arrays[name] = values / 255.0 if image.GetPixelID() == sitk.sitkUInt8 else values
        expected = tuple(reversed(grid.size))
        for name, array in arrays.items():
            if array.shape != expected:
                raise BundleError(f"{bundle.folder}: template {name} has shape {array.shape}, expected {expected}")
        return cls(grid=grid, **arrays)


def build_template(templates_dir: Path, grid: GridConfig = GridConfig()) -> Template:
    """Resample the ICBM 2009a templates from ``templates_dir`` onto the model grid."""
    reference = grid.image()
    stem = "mni_icbm152_{}_tal_nlin_sym_09a_converted.nii.gz"
    arrays = {}
    for name in ("t1", "gm", "wm"):
        source = sitk.Cast(sitk.ReadImage(str(templates_dir / stem.format(name))), sitk.sitkFloat32)
        arrays[name] = sitk.GetArrayFromImage(resample(source, reference)).astype(np.float32)
    # The brain-masked T1 is 0..255; priors are 0..255 probabilities. Stored in the bundle as
    # float32, exactly as training used them.
    t1 = arrays["t1"] / 255.0
    t1[t1 < 0.02] = 0.0
    return Template(t1=t1, gm=arrays["gm"] / 255.0, wm=arrays["wm"] / 255.0, grid=grid)
