"""A score map normalised at each place by what healthy scans' maps do there (issue 28, candidate B).

The default map is standardised within each scan, so one number (its voxel threshold) must serve every place
in the brain. Healthy maps are not equally quiet everywhere: the skull base, the ventricle borders and the
brain surface run hotter than the white matter, and their tail sets the peaks that 5% of healthy scans
reach, which hides faint tumours elsewhere (``experiments/missed_tumours.py``). This scorer takes the base
map of a bundle's scorer and, on the model grid, subtracts the healthy mean at each voxel and divides by the
healthy spread there; both were estimated from cross-fitted healthy maps (:func:`location_statistics`),
smoothed, with a floor on the spread so that a place where every healthy scan agrees cannot turn noise into
evidence.

Optionally (candidate C) the scorer adds the hemispheric asymmetry of :mod:`.asymmetry`, normalised the same way by
its own healthy statistics, clipped at 0, read only where both mirror places are at least
``asymmetry_inner_voxels`` inside the brain, and kept on the side whose normalised map is the higher of the two mirror
places, times ``asymmetry_weight``.

Like :class:`~.latent_atlas_sum.LatentAtlasSumScorer` it holds no fitted encoder statistics of its own: it is
bound (:meth:`bind`) to the bundle's base scorer and that scorer's post-processing, and its own
post-processing is the identity.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
from scipy import ndimage

from .asymmetry import asymmetry_map, one_sided, symmetric_support
from .base import EncodedScan, needs_mirror
from .postprocess import PostprocessConfig, postprocess


def location_statistics(
    maps: Sequence[np.ndarray], masks: Sequence[np.ndarray], sigma_vox: float, floor_fraction: float, min_scans: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per-voxel mean and spread of healthy ``maps``, each counted only inside its own mask.

    Sums, sums of squares and counts are smoothed with the same Gaussian (``sigma_vox``; 0 for none) before
    dividing, so each voxel's estimate pools its neighbourhood without leaking values from outside the masks.
    Voxels seen in fewer than ``min_scans`` masks get mean 0 and the median spread; the spread is at least
    ``floor_fraction`` times the median spread over the voxels seen often enough."""
    total = np.zeros(maps[0].shape, np.float64)
    squares = np.zeros_like(total)
    count = np.zeros_like(total)
    for score, mask in zip(maps, masks):
        inside = mask.astype(bool)
        total += np.where(inside, score, 0.0)
        squares += np.where(inside, np.square(score, dtype=np.float64), 0.0)
        count += inside
    seen = count >= min_scans
    if sigma_vox > 0:
        total, squares, count = (
            ndimage.gaussian_filter(a, sigma_vox, mode="constant") for a in (total, squares, count)
        )
    safe = np.maximum(count, 1e-6)
    mean = total / safe
    spread = np.sqrt(np.maximum(squares / safe - mean**2, 0.0))
    typical = float(np.median(spread[seen])) if seen.any() else 1.0
    spread = np.maximum(spread, floor_fraction * typical)
    mean[~seen], spread[~seen] = 0.0, typical
    return mean.astype(np.float32), spread.astype(np.float32)


class LocationNormalisedScorer:
    """The base scorer's post-processed map minus the healthy ``mean`` and divided by the healthy ``spread`` at
    each model-grid voxel (0 outside the brain mask), plus the one-sided normalised asymmetry when ``asymmetry``
    (its healthy mean and spread) is given."""

    name: ClassVar[str] = "location_normalised"

    def __init__(
        self,
        base: str,
        mean: np.ndarray,
        spread: np.ndarray,
        settings: Mapping[str, Any] | None = None,
        asymmetry: tuple[np.ndarray, np.ndarray] | None = None,
        asymmetry_weight: float = 0.0,
        asymmetry_inner_voxels: int = 0,
    ):
        for m, s in [(mean, spread), *([asymmetry] if asymmetry is not None else [])]:
            if m.shape != mean.shape or s.shape != mean.shape:
                raise ValueError(f"the location statistics must all have one shape, not {m.shape} and {s.shape}")
            if not np.all(np.isfinite(m)) or not np.all(np.isfinite(s)) or np.any(s <= 0):
                raise ValueError("the location statistics must be finite, with a positive spread")
        if (
            not np.isfinite(asymmetry_weight)
            or asymmetry_weight < 0
            or (asymmetry_weight > 0) != (asymmetry is not None)
        ):
            raise ValueError("asymmetry_weight must be > 0 exactly when asymmetry statistics are given")
        self.base = base
        self.mean, self.spread = mean.astype(np.float32), spread.astype(np.float32)
        self.asymmetry = None if asymmetry is None else tuple(a.astype(np.float32) for a in asymmetry)
        self.asymmetry_weight = float(asymmetry_weight)
        if asymmetry_inner_voxels < 0 or int(asymmetry_inner_voxels) != asymmetry_inner_voxels:
            raise ValueError(f"asymmetry_inner_voxels must be a whole number >= 0, not {asymmetry_inner_voxels!r}")
        self.asymmetry_inner_voxels = int(asymmetry_inner_voxels)
        self.settings = dict(settings or {})
        self._bound: tuple[Any, PostprocessConfig] | None = None

    @property
    def needs(self) -> frozenset[str]:
        return frozenset(getattr(self._bound[0], "needs", {"image", "latent"})) if self._bound else frozenset()

    @property
    def mirror_average(self) -> bool:
        """True when the asymmetry or the base map needs the mirrored view (so detect encodes the mirrored scan)."""
        return self.asymmetry is not None or (self._bound is not None and needs_mirror(self._bound[0]))

    def bind(self, scorers: Mapping[str, Any], calibration: Mapping[str, Any]) -> None:
        """Attach the base scorer and its post-processing (``calibration["scorers"][base]["postprocess"]``)."""
        if self.base not in scorers:
            raise ValueError(f"{self.name} needs the scorer {self.base!r} in the same model")
        options = dict(calibration["scorers"].get(self.base, {}).get("postprocess", {}))
        self._bound = (scorers[self.base], PostprocessConfig(**options))

    def fit(self, scans: Sequence[EncodedScan]) -> None:
        """Nothing to fit here: the statistics come from cross-fitted maps (:func:`location_statistics`)."""
        self._require_bound()

    def base_map(self, scan: EncodedScan) -> np.ndarray:
        """The base scorer's post-processed map on the model grid."""
        scorer, config = self._require_bound()
        return postprocess(scorer.score(scan), scan.mask, config)

    def normalise(self, base_map: np.ndarray, mask: np.ndarray) -> np.ndarray:
        if base_map.shape != self.mean.shape:
            raise ValueError(f"a {base_map.shape} map does not fit location statistics of shape {self.mean.shape}")
        return np.where(mask, (base_map - self.mean) / self.spread, 0.0).astype(np.float32)

    def score(self, scan: EncodedScan) -> np.ndarray:
        return self.score_from_base(scan, self.base_map(scan))

    def score_from_base(self, scan: EncodedScan, base_map: np.ndarray) -> np.ndarray:
        """:meth:`score` given the base scorer's post-processed map, when detection has computed it already."""
        mask = scan.mask.astype(bool)
        normalised = self.normalise(base_map, mask)
        if self.asymmetry is None:
            return normalised
        mean, spread = self.asymmetry
        support = symmetric_support(mask, self.asymmetry_inner_voxels)
        evidence = np.where(support, np.maximum((asymmetry_map(scan) - mean) / spread, 0.0), 0.0)
        return (normalised + np.float32(self.asymmetry_weight) * one_sided(normalised, evidence)).astype(np.float32)

    @property
    def base_unchanged(self) -> bool:
        """True when the base map is not normalised (mean 0 and spread 1 everywhere: only the asymmetry is added)."""
        return not self.mean.any() and bool(np.all(self.spread == 1.0))

    def state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Arrays and JSON; an unchanged base map stores no mean and spread (``params["base_normalised"]`` false)."""
        omit = self.base_unchanged and self.asymmetry is not None  # the asymmetry's arrays give the shape
        arrays = {} if omit else {"mean": self.mean, "spread": self.spread}
        if self.asymmetry is not None:
            arrays.update(asymmetry_mean=self.asymmetry[0], asymmetry_spread=self.asymmetry[1])
        params = {
            "base": self.base,
            "base_normalised": not omit,
            "asymmetry_weight": self.asymmetry_weight,
            "asymmetry_inner_voxels": self.asymmetry_inner_voxels,
        }
        return arrays, {"scorer": self.name, "params": params, "settings": self.settings}

    @classmethod
    def from_state(cls, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> LocationNormalisedScorer:
        """The scorer of a bundle's files, unbound."""
        asymmetry = (arrays["asymmetry_mean"], arrays["asymmetry_spread"]) if "asymmetry_mean" in arrays else None
        params = meta["params"]
        if params.get("base_normalised", True):
            mean, spread = arrays["mean"], arrays["spread"]
        elif asymmetry is not None:
            mean, spread = np.zeros_like(asymmetry[0]), np.ones_like(asymmetry[0])
        else:
            raise ValueError("a location-normalised scorer that changes nothing (no statistics, no asymmetry)")
        return cls(
            params["base"],
            mean,
            spread,
            meta.get("settings"),
            asymmetry,
            float(params.get("asymmetry_weight", 0.0)),
            int(params.get("asymmetry_inner_voxels", 0)),
        )

    def _require_bound(self) -> tuple[Any, PostprocessConfig]:
        if self._bound is None:
            raise ValueError(f"{self.name} is not bound to its base scorer {self.base!r} (call bind first)")
        return self._bound


def bind_location_normalised(scorers: Mapping[str, Any], calibration: Mapping[str, Any]) -> None:
    """Bind every :class:`LocationNormalisedScorer` among ``scorers`` to its base (model loading, after the sums)."""
    for scorer in scorers.values():
        if isinstance(scorer, LocationNormalisedScorer):
            scorer.bind(scorers, calibration)
