"""Make a skull-stripped input's brain boundary look like the product's own, so another tool's stripping cannot make
a region (issue 28; docs/map-design.md, probes 2 to 4).

Why: every calibration scan has its skull and gets the product's brain mask. A scan stripped by another tool
arrives with that tool's boundary: orbital fat and dura left in, or the brainstem cut higher. The encoder sees
tissue no calibration scan had, or none where every calibration scan had some, and flags it (on validation,
brainstem cut 18/20 and orbital fat 11/20 flagged at alpha 0.05 with model 1.8.0). Two steps, both for skull-stripped
inputs only, both off unless the bundle's ``preprocess.stripped_boundary`` turns them on:

- **band mask** (``band_mm`` > 0): the product's brain-extraction network also runs on the stripped input, and in the
  site mask's outer ``band_mm`` only the voxels the network calls brain stay. Deeper tissue always stays, so a tumour
  inside the brain is never taken out. The network's mask is used only when it keeps more than ``min_kept_fraction``
  of the site's mask: a network that does not find the brain must not cut it.
- **thick fill** (``fill_opening_voxels`` > 0): on the model grid after normalisation, the parts of the template brain
  (dilated by ``fill_near_voxels``) that the input lacks and that are thicker than the opening ball get the
  template's normalised T1. A cut brainstem is filled up to the cut; the thin ring around a tighter cortex is not.
  The filled voxels stay outside the scored mask: they only give the encoder the context a whole brain gives.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class StrippedBoundaryConfig:
    """Bundle data (``preprocess.stripped_boundary``); the defaults turn both steps off (bundles before 1.9.0)."""

    band_mm: float = 0.0
    min_kept_fraction: float = 0.5
    fill_opening_voxels: int = 0
    fill_near_voxels: int = 2

    @classmethod
    def from_json(cls, data: dict) -> StrippedBoundaryConfig:
        """The bundle's ``preprocess.stripped_boundary`` (absent: both steps off), numbers as their fields' types."""
        unknown = set(data) - {"band_mm", "min_kept_fraction", "fill_opening_voxels", "fill_near_voxels"}
        if unknown:
            raise ValueError(f"unknown stripped_boundary setting(s): {', '.join(sorted(unknown))}")
        for name in ("fill_opening_voxels", "fill_near_voxels"):
            if name in data and float(data[name]) != int(data[name]):
                raise ValueError(f"stripped_boundary.{name} must be a whole number of voxels, got {data[name]!r}")
        ints = {k: int(data[k]) for k in ("fill_opening_voxels", "fill_near_voxels") if k in data}
        floats = {k: float(data[k]) for k in ("band_mm", "min_kept_fraction") if k in data}
        return cls(**floats, **ints)

    def __post_init__(self) -> None:
        if self.band_mm < 0 or self.fill_opening_voxels < 0 or self.fill_near_voxels < 0:
            raise ValueError("stripped_boundary settings must not be negative")
        if not 0.0 <= self.min_kept_fraction < 1.0:
            raise ValueError("stripped_boundary.min_kept_fraction must lie in [0, 1)")


def band_masked(
    site_mask: np.ndarray, network_mask: np.ndarray, spacing_zyx: tuple[float, ...], config: StrippedBoundaryConfig
) -> np.ndarray:
    """The site's mask with the voxels of its outer ``band_mm`` that the network does not call brain taken out
    (arrays on the scan's grid, ``spacing_zyx`` in mm); the site's mask unchanged when the step is off or the network
    keeps too little of it."""
    site = np.asarray(site_mask, dtype=bool)
    if config.band_mm <= 0 or not site.any():
        return site
    inner = _deeper_than(site, spacing_zyx, config.band_mm)
    kept = site & (np.asarray(network_mask, dtype=bool) | inner)
    if kept.sum() <= config.min_kept_fraction * site.sum():
        return site
    return kept


def _deeper_than(site: np.ndarray, spacing_zyx: tuple[float, ...], depth_mm: float) -> np.ndarray:
    """Voxels of ``site`` more than ``depth_mm`` from its outside: the distance transform on the mask's bounding box
    grown by one voxel (within the array), which gives the same distances as on the whole array at a third of the
    time on a 240x240x155 scan (the nearest outside voxel of any voxel has a counterpart as near in that margin)."""
    from scipy import ndimage  # here, so that bundle configs load where only torch is installed

    box = ndimage.find_objects(site.astype(np.uint8))[0]
    box = tuple(slice(max(b.start - 1, 0), min(b.stop + 1, n)) for b, n in zip(box, site.shape))
    inner = np.zeros_like(site)
    inner[box] = ndimage.distance_transform_edt(site[box], sampling=spacing_zyx) > depth_mm
    return inner


def thick_filled(
    image: np.ndarray,
    mask: np.ndarray,
    template_brain: np.ndarray,
    template_image: np.ndarray,
    config: StrippedBoundaryConfig,
) -> np.ndarray:
    """``image`` (model grid, normalised) with the template's normalised T1 in the thick parts of the template brain
    that ``mask`` lacks; ``image`` itself (not a copy) when the step is off."""
    if config.fill_opening_voxels <= 0:
        return image
    from scipy import ndimage

    brain = np.asarray(template_brain, dtype=bool)
    near = ndimage.binary_dilation(brain, iterations=config.fill_near_voxels) if config.fill_near_voxels else brain
    missing = near & ~np.asarray(mask, dtype=bool)
    thick = ndimage.binary_opening(missing, iterations=config.fill_opening_voxels)
    return np.where(thick, template_image, image).astype(image.dtype, copy=False)
