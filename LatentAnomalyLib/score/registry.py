"""Scorer registry: name -> class, so bundles name their scorers as data."""

from __future__ import annotations

from .atlas import AtlasScorer
from .family import FAMILY_SCORERS
from .gaussian import GaussianScorer
from .gaussian_fine import FineGaussianScorer
from .knn import KNNScorer
from .latent_atlas_sum import LatentAtlasSumScorer
from .location_normalised import LocationNormalisedScorer
from .lof import LOFScorer
from .ocsvm import OCSVMScorer
from .residual import ResidualScorer

SCORERS: dict[str, type] = {
    cls.name: cls
    for cls in (
        OCSVMScorer,
        LOFScorer,
        KNNScorer,
        GaussianScorer,
        FineGaussianScorer,
        ResidualScorer,
        AtlasScorer,
        LatentAtlasSumScorer,
        LocationNormalisedScorer,
    )
}
SCORERS.update({cls.name: cls for cls in FAMILY_SCORERS.values()})  # each encoder family's own score
LATENT_SCORERS = ("ocsvm", "lof", "knn", "gaussian", "gaussian4mm")
BASELINE_SCORERS = ("residual", "atlas")
COMBINED_SCORERS = ("gaussian4mm_atlas",)  # sums of other scorers' maps (score/latent_atlas_sum.py)
DERIVED_SCORERS = ("location_normalised",)  # another scorer's map normalised per place (score/location_normalised.py)


def scorer_class(name: str) -> type:
    if name not in SCORERS:
        raise ValueError(f"unknown scorer {name!r}; known: {', '.join(SCORERS)}")
    return SCORERS[name]


__all__ = ["BASELINE_SCORERS", "COMBINED_SCORERS", "DERIVED_SCORERS", "LATENT_SCORERS", "SCORERS", "scorer_class"]
