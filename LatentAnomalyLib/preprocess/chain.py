"""The reversible preprocessing chain shared by training and detection.

scan (any format, orientation, spacing) -> brain mask (stripped support or U-Net) -> affine
registration of the brain to the template -> one resampling onto the 2 mm model grid ->
tissue-anchored intensity normalisation. The result keeps the transform so any map computed on
the model grid goes back to the scan's own grid with the exact inverse affine.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import SimpleITK as sitk
import torch

from ..bundle.configs import GridConfig, PreprocessConfig
from ..errors import InputError
from .brainmask import looks_skull_stripped, mask_from_probability, on_mask_grid, predict_probability, stripped_mask
from .geometry import antialiased, axis_aligned_grid, resample, resample_mask
from .intensity_screen import screen_intensities
from .normalize import NormalisationError, normalise
from .registration import register_affine, scale_factor
from .stripped_boundary import band_masked, thick_filled
from .template import Template

SKULL_MODES = ("auto", "stripped", "skull")
PLAUSIBLE_SCALE = (0.3, 2.5)  # brain volume relative to the template; outside this registration failed
POSSIBLE_BRAIN_ML = (300.0, 3000.0)  # no human brain mask lies outside (adults here: 1050-1800 mL); 600-2500 warns


@dataclass
class Preprocessed:
    """A scan on the model grid, with what is needed to map results back to the scan."""

    image: np.ndarray
    mask: np.ndarray
    transform: sitk.AffineTransform
    native: sitk.Image
    native_mask: np.ndarray
    skull_stripped: bool
    info: dict[str, float] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # what the preprocessing changed for the analysis (warnings)

    def to_native(self, array: np.ndarray, grid: GridConfig, inside_brain: bool = True) -> sitk.Image:
        """Map a model-grid map onto the scan's grid with the exact inverse transform."""
        model = sitk.GetImageFromArray(np.ascontiguousarray(array, dtype=np.float32))
        model.CopyInformation(grid.image())
        out = resample(model, self.native, self.transform.GetInverse(), sitk.sitkLinear, 0.0, antialias=False)
        if inside_brain:
            values = sitk.GetArrayFromImage(out)
            values[~self.native_mask] = 0.0
            out = sitk.GetImageFromArray(values)
            out.CopyInformation(self.native)
        return out


def check_brain_volume(mask: np.ndarray, image: sitk.Image) -> None:
    """Refuse a brain mask no human brain could give (a wrong voxel size, corrupted intensities, not a head):
    publishing its heatmap with a warning would still put a result on the record."""
    volume_ml = float(mask.sum()) * float(np.prod(image.GetSpacing()[:3])) / 1000.0
    low, high = POSSIBLE_BRAIN_ML
    if not low <= volume_ml <= high:
        raise InputError(
            f"the brain mask is {volume_ml:.0f} mL, outside what any human brain gives ({low:.0f}-{high:.0f} mL): "
            "the scan's voxel size or intensities are wrong, or it is not a head scan; check the header's voxel size"
        )


class Preprocessor:
    """Apply the bundle's preprocessing to a scan; the same object serves training and detection."""

    def __init__(
        self, config: PreprocessConfig, template: Template, brainmask_net: torch.nn.Module | None, device: str = "cpu"
    ):
        self.config = config
        self.template = template
        self.brainmask_net = brainmask_net
        self.device = device
        self._fixed = template.as_image("t1")
        self._filling: np.ndarray | None = None  # the template's normalised T1 (thick fill; made once)

    def brain_mask(self, image: sitk.Image, skull: str = "auto") -> tuple[np.ndarray, bool]:
        """Brain mask on the scan's own grid and whether the scan was treated as skull-stripped."""
        if skull not in SKULL_MODES:
            raise ValueError(f"skull must be one of {SKULL_MODES}")
        work = on_mask_grid(image, self.config.brainmask) if skull == "auto" else None  # used by both steps below
        stripped = skull == "stripped" or (skull == "auto" and looks_skull_stripped(image, self.config.brainmask, work))
        if stripped:
            mask = sitk.GetArrayFromImage(stripped_mask(image, self.config.brainmask)) > 0
            boundary = self.config.stripped_boundary
            if boundary.band_mm > 0 and self.brainmask_net is not None and mask.any():
                prob = predict_probability(self.brainmask_net, image, self.config.brainmask, self.device, work)
                network = mask_from_probability(prob, image)
                mask = band_masked(mask, network, image.GetSpacing()[::-1], boundary)
        else:
            if self.brainmask_net is None:
                raise InputError("this scan has a skull but the model bundle has no brain-extraction network")
            prob = predict_probability(self.brainmask_net, image, self.config.brainmask, self.device, work)
            mask = mask_from_probability(prob, image)
        if mask.sum() == 0:
            raise InputError("no brain found in the scan")
        return mask, stripped

    def run(self, image: sitk.Image, skull: str = "auto") -> Preprocessed:
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        image, notes = screen_intensities(image)  # one spike voxel must not move the mask, registration or scale
        native_mask, stripped = self.brain_mask(image, skull)
        check_brain_volume(native_mask, image)
        timings["brain_mask"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        mask_image = sitk.GetImageFromArray(native_mask.astype(np.uint8))
        mask_image.CopyInformation(image)
        spacing = float(self.config.registration_spacing)
        smoothed = antialiased(image, spacing)  # filtered once when the model grid has the same spacing
        work = resample(smoothed, axis_aligned_grid(image, spacing), antialias=False)
        work_mask = resample_mask(mask_image, work)
        moving = sitk.GetArrayFromImage(work)
        moving[~work_mask] = 0.0
        moving_image = sitk.GetImageFromArray(moving)
        moving_image.CopyInformation(work)
        transform = register_affine(moving_image, self._fixed, self.config.registration)
        scale = scale_factor(transform)
        if not PLAUSIBLE_SCALE[0] <= scale <= PLAUSIBLE_SCALE[1]:
            raise InputError(f"registration to the template failed (volume ratio {scale:.2f}); is this a brain MRI?")
        timings["registration"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        reference = self.config.grid.image()
        model_spacing = float(min(reference.GetSpacing()))
        source = smoothed if model_spacing == spacing else antialiased(image, model_spacing)
        model = sitk.GetArrayFromImage(resample(source, reference, transform, antialias=False))
        model_mask = resample_mask(mask_image, reference, transform)
        try:
            normalised, anchors = normalise(
                model, model_mask, self.template.gm, self.template.wm, self.config.normalisation
            )
        except NormalisationError as error:
            raise InputError(str(error)) from None
        if stripped and self.config.stripped_boundary.fill_opening_voxels > 0:
            normalised = thick_filled(normalised, model_mask, self.template.mask, self._template_filling(),
                                      self.config.stripped_boundary)  # fmt: skip
        timings["resample_normalise"] = time.perf_counter() - t0
        info = {"registration_volume_ratio": scale, **anchors}
        return Preprocessed(normalised, model_mask, transform, image, native_mask, stripped, info, timings, notes)

    def _template_filling(self) -> np.ndarray:
        """The template's T1 normalised as a scan is (white matter at 1): what the thick fill puts in."""
        if self._filling is None:
            t = self.template
            brain = np.asarray(t.mask, dtype=bool)
            self._filling = normalise(np.asarray(t.t1, dtype=np.float32), brain, t.gm, t.wm, self.config.normalisation)[0]
        return self._filling
