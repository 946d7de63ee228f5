"""The latent map plus a weighted hypo-intensity atlas map: two independent views of the same scan summed.

gaussian4mm scores what the encoder's features at a place look like against healthy features there; the
statistical atlas (:mod:`.atlas`, direction "low") scores how much darker a voxel is than healthy scans at
that voxel. After each scorer's own post-processing (within-scan standardisation, filtering, mask) both are in
units of the scan's healthy spread, so their sum ranks a lesion high when either view, or both, see it.
Design 3 of issue 15 (``experiments/atlas_sum_choice.py``) chose the weight 0.5 on IXI validation lesions.

The scorer holds no arrays of its own: it is bound to the bundle's two part scorers and their post-processing
(:meth:`bind`), and its own post-processing must be the identity (``IDENTITY_POSTPROCESS``), because the
parts' post-processing already happened inside :meth:`score`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from .atlas import AtlasScorer
from .base import EncodedScan, needs_mirror
from .postprocess import PostprocessConfig, postprocess

IDENTITY_POSTPROCESS = {"median_size": 1, "gaussian_sigma_vox": 0.0, "erode_mask_vox": 0, "scan_normalise": False}


class LatentAtlasSumScorer:
    """gaussian4mm's post-processed map plus ``atlas_weight`` times the hypo-intensity atlas's (both named scorers of
    the same bundle); its name says which parts it sums, so :meth:`bind` accepts no other kinds."""

    name: ClassVar[str] = "gaussian4mm_atlas"
    needs: ClassVar[frozenset[str]] = frozenset({"image", "latent"})

    def __init__(self, atlas_weight: float = 0.5, latent: str = "gaussian4mm", atlas: str = "atlas") -> None:
        if not np.isfinite(atlas_weight) or atlas_weight < 0:
            raise ValueError(f"atlas_weight must be a finite number >= 0, not {atlas_weight!r}")
        self.atlas_weight = float(atlas_weight)
        self.parts = {"latent": latent, "atlas": atlas}
        self._bound: dict[str, tuple[Any, PostprocessConfig]] = {}

    @property
    def part_names(self) -> tuple[str, str]:
        """The bundle names of the (latent, atlas) parts."""
        return self.parts["latent"], self.parts["atlas"]

    def bind(self, scorers: Mapping[str, Any], calibration: Mapping[str, Any]) -> None:
        """Attach the fitted part scorers and their post-processing, read from ``calibration``
        (``{"scorers": {name: {"postprocess": options, ...}}}``: a model's calibration view, or training's)."""
        postprocess_of = {n: entry.get("postprocess", {}) for n, entry in calibration["scorers"].items()}
        missing = [n for n in self.part_names if n not in scorers]
        if missing:
            raise ValueError(f"{self.name} needs the scorer(s) {', '.join(missing)} in the same model")
        latent, atlas = (scorers[n] for n in self.part_names)
        if latent.name != "gaussian4mm":  # the class's name, whatever the bundle entry is called
            raise ValueError(f"{self.name} needs a gaussian4mm scorer as its latent part, not scorer {latent.name!r}")
        if not isinstance(atlas, AtlasScorer) or atlas.direction != "low":
            what = f"direction {atlas.direction!r}" if isinstance(atlas, AtlasScorer) else f"scorer {atlas.name!r}"
            raise ValueError(f"{self.name} needs an atlas in the hypo-intensity direction, not {what}")
        if dict(postprocess_of.get(self.name, IDENTITY_POSTPROCESS)) != IDENTITY_POSTPROCESS:
            raise ValueError(f"{self.name}: its own postprocess must be {IDENTITY_POSTPROCESS} (the parts filter)")
        self._bound = {
            role: (scorers[name], PostprocessConfig(**dict(postprocess_of[name]))) for role, name in self.parts.items()
        }

    @property
    def mirror_average(self) -> bool:
        """True when the latent part averages with the mirrored view (so detect encodes the mirrored scan)."""
        return bool(self._bound) and needs_mirror(self._bound["latent"][0])

    def fit(self, scans: Sequence[EncodedScan]) -> None:
        """Nothing to fit: the parts are fitted by their own stages; only checks that they are bound."""
        self._require_bound()

    def part_maps(self, scan: EncodedScan) -> dict[str, np.ndarray]:
        """Each part's post-processed map on the model grid (what the heatmap is the weighted sum of)."""
        self._require_bound()
        return {
            role: postprocess(scorer.score(scan), scan.mask, config) for role, (scorer, config) in self._bound.items()
        }

    def score(self, scan: EncodedScan) -> np.ndarray:
        """The summed map on the model grid (already post-processed: see the module docstring)."""
        maps = self.part_maps(scan)
        return (maps["latent"] + np.float32(self.atlas_weight) * maps["atlas"]).astype(np.float32)

    def state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """No arrays; the weight and the parts' names."""
        params = {"atlas_weight": self.atlas_weight, **self.parts}
        return {}, {"scorer": self.name, "params": params}

    @classmethod
    def from_state(cls, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> LatentAtlasSumScorer:
        """The scorer of a bundle's JSON file, unbound."""
        return cls(**meta.get("params", {}))

    def _require_bound(self) -> None:
        if not self._bound:
            raise ValueError(f"{self.name} is not bound to its part scorers (call bind first)")


def bind_sums(scorers: Mapping[str, Any], calibration: Mapping[str, Any]) -> None:
    """Bind every :class:`LatentAtlasSumScorer` among ``scorers`` to its parts (model loading, cross-fitting)."""
    for scorer in scorers.values():
        if isinstance(scorer, LatentAtlasSumScorer):
            scorer.bind(scorers, calibration)
