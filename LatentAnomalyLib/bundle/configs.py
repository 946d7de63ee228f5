"""Configuration dataclasses stored in model bundles, importable without SimpleITK.

Keeping them free of imaging libraries lets the training stages that need only torch (brain-mask
and encoder training) run on a machine that has nothing else installed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .. import DEFAULT_SEED
from ..preprocess.brainmask_net import BrainMaskConfig
from ..preprocess.normalize import NormalisationConfig
from ..preprocess.stripped_boundary import StrippedBoundaryConfig


def tuples(data: dict[str, Any]) -> dict[str, Any]:
    """JSON lists back to tuples, as the frozen config dataclasses declare them."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}


@dataclass(frozen=True)
class GridConfig:
    """The model grid: MNI152 box at 2 mm, sized to hold the ICBM brain with a margin."""

    size: tuple[int, int, int] = (80, 96, 80)
    spacing: float = 2.0
    origin: tuple[float, float, float] = (-79.0, -78.0, -74.0)

    def image(self):  # -> SimpleITK.Image (imported lazily)
        from ..preprocess.geometry import make_grid

        return make_grid(self.size, self.spacing, self.origin)


@dataclass(frozen=True)
class RegistrationConfig:
    """Settings stored in the model bundle so training and detection register identically."""

    shrink_factors: tuple[int, ...] = (4, 2)
    smoothing_mm: tuple[float, ...] = (4.0, 2.0)
    sampling_fraction: float = 0.25
    iterations: int = 100
    histogram_bins: int = 32
    seed: int = DEFAULT_SEED


@dataclass(frozen=True)
class PreprocessConfig:
    grid: GridConfig = field(default_factory=GridConfig)
    registration: RegistrationConfig = field(default_factory=RegistrationConfig)
    brainmask: BrainMaskConfig = field(default_factory=BrainMaskConfig)
    normalisation: NormalisationConfig = field(default_factory=NormalisationConfig)
    registration_spacing: float = 2.0
    stripped_boundary: StrippedBoundaryConfig = field(default_factory=StrippedBoundaryConfig)


def preprocess_config_from_json(data: dict[str, Any]) -> PreprocessConfig:
    return PreprocessConfig(
        grid=GridConfig(**tuples(data["grid"])),
        registration=RegistrationConfig(**tuples(data["registration"])),
        brainmask=BrainMaskConfig(**tuples(data["brainmask"])),
        normalisation=NormalisationConfig(**tuples(data["normalisation"])),
        registration_spacing=float(data.get("registration_spacing", 2.0)),
        stripped_boundary=StrippedBoundaryConfig.from_json(data.get("stripped_boundary", {})),
    )
