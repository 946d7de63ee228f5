"""The combined map (score/latent_atlas_sum.py): the parts' post-processed maps summed, bound as data, refusals."""

from __future__ import annotations

import numpy as np
import pytest

from LatentAnomalyLib.score.atlas import AtlasScorer
from LatentAnomalyLib.score.base import EncodedScan, needs_mirror
from LatentAnomalyLib.score.latent_atlas_sum import IDENTITY_POSTPROCESS, LatentAtlasSumScorer, bind_sums
from LatentAnomalyLib.score.postprocess import PostprocessConfig, postprocess
from LatentAnomalyLib.score.registry import SCORERS

from .test_scorers import SHAPE, _make, _toy_scans

LATENT_POST = {"median_size": 3, "gaussian_sigma_vox": 1.0, "erode_mask_vox": 0, "scan_normalise": True}
ATLAS_POST = {"median_size": 3, "gaussian_sigma_vox": 0.0, "erode_mask_vox": 1, "scan_normalise": True}


def _calibration(**postprocess: dict) -> dict:
    """A calibration view holding only each scorer's post-processing (what bind reads)."""
    return {"scorers": {name: {"postprocess": options} for name, options in postprocess.items()}}


PARTS = _calibration(gaussian4mm=LATENT_POST, atlas=ATLAS_POST)


def _scans(n: int, rng: np.random.Generator) -> list[EncodedScan]:
    """The toy scans of test_scorers.py (position-dependent latents), with a brain mask short of the border."""
    scans = _toy_scans(n, rng)
    for scan in scans:
        scan.mask = np.zeros(SHAPE, bool)
        scan.mask[2:-2, 2:-2, 2:-2] = True
    return scans


def _parts(rng: np.random.Generator) -> dict:
    """A real gaussian4mm and a hypo-intensity atlas, fitted on the same toy healthy scans."""
    latent, atlas = _make("gaussian4mm"), AtlasScorer(direction="low")
    healthy = _scans(40, rng)
    latent.fit(healthy)
    atlas.fit(healthy)
    return {"gaussian4mm": latent, "atlas": atlas}


def test_the_map_is_the_latent_map_plus_the_weighted_atlas_map_each_post_processed():
    rng = np.random.default_rng(0)
    parts = _parts(rng)
    scorer = LatentAtlasSumScorer(atlas_weight=0.5)
    scorer.bind(parts, PARTS)
    scan = _toy_scans(1, rng, anomaly=True)[0]  # a dark blob and a shifted latent cell: both parts see it
    scan.mask = np.zeros(SHAPE, bool)
    scan.mask[2:-2, 2:-2, 2:-2] = True
    expected = postprocess(parts["gaussian4mm"].score(scan), scan.mask, PostprocessConfig(**LATENT_POST))
    expected += 0.5 * postprocess(parts["atlas"].score(scan), scan.mask, PostprocessConfig(**ATLAS_POST))
    out = scorer.score(scan)
    assert out.dtype == np.float32 and np.array_equal(out, expected.astype(np.float32))
    # its own post-processing is the identity: the detector's filtering step leaves the sum as it is
    assert np.array_equal(postprocess(out, scan.mask, PostprocessConfig(**IDENTITY_POSTPROCESS)), out)
    weights = LatentAtlasSumScorer(atlas_weight=0.0)
    weights.bind(parts, PARTS)
    assert not np.array_equal(weights.score(scan), out)  # the weight is used


def test_state_is_data_only_and_round_trips_through_the_registry():
    scorer = LatentAtlasSumScorer(atlas_weight=0.25, latent="knn")
    arrays, meta = scorer.state()
    assert arrays == {} and meta == {"scorer": "gaussian4mm_atlas", "params": {"atlas_weight": 0.25, "latent": "knn", "atlas": "atlas"}}
    again = SCORERS[meta["scorer"]].from_state(arrays, meta)
    assert again.state() == (arrays, meta)


def test_bind_sums_binds_combined_scorers_in_a_model_and_mirror_follows_the_latent_part():
    rng = np.random.default_rng(1)
    parts = _parts(rng)
    combined = LatentAtlasSumScorer()
    scorers = {**parts, "gaussian4mm_atlas": combined}
    assert not needs_mirror(combined)  # unbound: nothing to mirror
    bind_sums(scorers, _calibration(gaussian4mm=LATENT_POST, atlas=ATLAS_POST, gaussian4mm_atlas=IDENTITY_POSTPROCESS))
    scan = _scans(1, rng)[0]
    assert combined.score(scan).shape == SHAPE
    assert np.array_equal(combined.score(scan), combined.part_maps(scan)["latent"] + 0.5 * combined.part_maps(scan)["atlas"])
    parts["gaussian4mm"].params["mirror_average"] = True  # the bundled model's gaussian4mm averages the two views
    assert needs_mirror(combined)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: LatentAtlasSumScorer(atlas_weight=-1.0), "atlas_weight must be"),
        (lambda p: LatentAtlasSumScorer(atlas_weight=float("nan")), "atlas_weight must be"),
        (lambda p: LatentAtlasSumScorer().bind({"atlas": p["atlas"]}, PARTS), "needs the scorer(s) gaussian4mm"),
        (
            lambda p: LatentAtlasSumScorer().bind({"gaussian4mm": p["gaussian4mm"], "atlas": p["gaussian4mm"]}, PARTS),
            "hypo-intensity direction, not scorer 'gaussian4mm'",
        ),
        (
            lambda p: LatentAtlasSumScorer().bind({"gaussian4mm": p["atlas"], "atlas": p["atlas"]}, PARTS),
            "needs a gaussian4mm scorer as its latent part, not scorer 'atlas'",
        ),
        (
            lambda p: LatentAtlasSumScorer().bind({**p, "gaussian4mm": LatentAtlasSumScorer()}, PARTS),
            "not scorer 'gaussian4mm_atlas'",
        ),
        (
            lambda p: LatentAtlasSumScorer().bind(
                p, _calibration(gaussian4mm={}, atlas={}, gaussian4mm_atlas={"scan_normalise": True})
            ),
            "its own postprocess must be",
        ),
        (lambda p: LatentAtlasSumScorer().score(_scans(1, np.random.default_rng(2))[0]), "not bound"),
        (lambda p: LatentAtlasSumScorer().fit([]), "not bound"),
    ],
)
def test_refusals(make, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        make(_parts(np.random.default_rng(3)))
