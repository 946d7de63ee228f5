"""One interface for every scorer: ``fit`` on healthy scans, ``score`` a scan, state as arrays + JSON.

A scorer sees an :class:`EncodedScan` (the preprocessed image on the model grid, its brain mask,
the encoder's latent map and, when asked for, the reconstruction) and returns a voxel map on the
model grid, higher meaning more anomalous. Latent scorers work per latent location and are
upsampled here, so the pipeline never needs to know which kind of scorer it holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import numpy as np
import torch
import torch.nn.functional as F


@dataclass
class EncodedScan:
    """What scorers may look at; fields a scorer does not need may be ``None``."""

    image: np.ndarray
    mask: np.ndarray
    latent: np.ndarray | None = None
    reconstruction: np.ndarray | None = None
    subject: str | None = None
    filtered: np.ndarray | None = None  # the encoder's prefiltered input: what the decoder reconstructs
    mirrored_latent: np.ndarray | None = None  # latent map of the left-right mirrored image (test-time mirroring)


class Scorer(Protocol):
    name: ClassVar[str]
    needs: ClassVar[frozenset[str]]

    def fit(self, scans: Sequence[EncodedScan]) -> None: ...

    def score(self, scan: EncodedScan) -> np.ndarray: ...

    def state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]: ...

    @classmethod
    def from_state(cls, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> Scorer: ...


def upsample(latent_map: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Trilinear upsampling of a latent-grid map to the model grid (cell centres aligned)."""
    t = torch.from_numpy(np.ascontiguousarray(latent_map, dtype=np.float32))[None, None]
    return F.interpolate(t, size=tuple(shape), mode="trilinear", align_corners=False)[0, 0].numpy()


def latent_grid_mask(mask: np.ndarray, stride: int, min_fraction: float = 0.25) -> np.ndarray:
    """Latent cells that hold at least ``min_fraction`` brain."""
    t = torch.from_numpy(mask.astype(np.float32))[None, None]
    return (F.avg_pool3d(t, stride)[0, 0] >= min_fraction).numpy()


def needs_mirror(scorer: Any) -> bool:
    """Whether a scorer averages over the mirrored view, so the scan's mirrored image must be encoded too."""
    return bool(getattr(scorer, "mirror_average", False))


def mirror_x(array: np.ndarray) -> np.ndarray:
    """Left-right mirror on the model grid, whose x axis (last) is symmetric about the midline."""
    return np.ascontiguousarray(array[..., ::-1])
