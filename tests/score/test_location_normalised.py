"""Candidate B's map (score/location_normalised.py): healthy statistics per place, normalisation, state, refusals."""

from __future__ import annotations

import numpy as np
import pytest

from LatentAnomalyLib.score.asymmetry import symmetric_support
from LatentAnomalyLib.score.base import EncodedScan
from LatentAnomalyLib.score.location_normalised import LocationNormalisedScorer, location_statistics

SHAPE = (6, 8, 10)


def test_statistics_are_per_voxel_mean_and_spread_inside_masks() -> None:
    rng = np.random.default_rng(0)
    maps = [rng.normal(size=SHAPE) * np.linspace(1, 3, SHAPE[2]) + 5.0 for _ in range(40)]
    masks = [np.ones(SHAPE, bool) for _ in maps]
    masks[0][0] = False  # a scan whose mask leaves out a slice: its values there must not count
    maps[0][0] = 1e6
    mean, spread = location_statistics(maps, masks, sigma_vox=0.0, floor_fraction=0.0, min_scans=5)
    stack = np.stack(maps)
    np.testing.assert_allclose(mean[1:], stack[:, 1:].mean(0), rtol=1e-5)
    np.testing.assert_allclose(spread[1:], stack[:, 1:].std(0), rtol=1e-4)
    np.testing.assert_allclose(mean[0], stack[1:, 0].mean(0), rtol=1e-5)  # the masked-out 1e6 is ignored
    assert spread[..., -1].mean() > 2 * spread[..., 0].mean()  # the noisier place keeps its larger spread


def test_floor_and_rarely_seen_voxels() -> None:
    maps = [np.full(SHAPE, 2.0, np.float32) for _ in range(10)]  # every scan agrees: zero spread
    maps[0][..., 5:] += 1.0
    masks = [np.ones(SHAPE, bool) for _ in maps]
    for m in masks[:7]:
        m[:, :, 0] = False  # seen in 3 of 10 masks only
    mean, spread = location_statistics(maps, masks, sigma_vox=0.0, floor_fraction=0.5, min_scans=5)
    typical = float(np.median(np.stack(maps)[:, :, :, 1:].std(0)))
    assert np.all(spread >= 0.5 * typical - 1e-6) and spread.min() > 0
    assert np.all(mean[:, :, 0] == 0.0) and np.allclose(spread[:, :, 0], typical)


def test_smoothing_leaks_nothing_from_outside_the_masks() -> None:
    maps = [np.full(SHAPE, 1.0, np.float32) for _ in range(30)]
    masks = [np.zeros(SHAPE, bool) for _ in maps]
    for m, s in zip(masks, maps):
        m[:, :, :5] = True
        s[:, :, 5:] = 50.0  # outside every mask
    mean, _ = location_statistics(maps, masks, sigma_vox=2.0, floor_fraction=0.5, min_scans=5)
    np.testing.assert_allclose(mean[:, :, :5], 1.0, rtol=1e-5)


class _Constant:
    """A base scorer whose map is its scan's image."""

    name = "constant"
    needs = frozenset({"image"})
    mirror_average = True

    def score(self, scan: EncodedScan) -> np.ndarray:
        return scan.image.astype(np.float32)


def _scan(image: np.ndarray) -> EncodedScan:
    mask = np.zeros(SHAPE, bool)
    mask[1:-1, 1:-1, 1:-1] = True
    return EncodedScan(image.astype(np.float32), mask, np.zeros((2, 1, 1, 1), np.float32))


IDENTITY = {"median_size": 1, "gaussian_sigma_vox": 0.0, "erode_mask_vox": 0, "scan_normalise": False}


def test_score_is_base_map_minus_mean_over_spread_inside_the_mask() -> None:
    mean, spread = np.full(SHAPE, 1.0, np.float32), np.full(SHAPE, 2.0, np.float32)
    spread[..., :5] = 4.0
    scorer = LocationNormalisedScorer("base", mean, spread)
    scorer.bind({"base": _Constant()}, {"scorers": {"base": {"postprocess": IDENTITY}}})
    scan = _scan(np.full(SHAPE, 9.0))
    z = scorer.score(scan)
    assert np.allclose(z[scan.mask & (np.arange(SHAPE[2]) >= 5)], 4.0)
    assert np.allclose(z[scan.mask & (np.arange(SHAPE[2]) < 5)], 2.0)
    assert np.all(z[~scan.mask] == 0.0)
    assert scorer.mirror_average and scorer.needs == {"image"}


def test_state_round_trip_and_refusals() -> None:
    mean, spread = np.zeros(SHAPE, np.float32), np.ones(SHAPE, np.float32)
    scorer = LocationNormalisedScorer("base", mean, spread, {"sigma_vox": 2.0})
    arrays, meta = scorer.state()
    again = LocationNormalisedScorer.from_state(arrays, meta)
    assert again.base == "base" and again.settings == {"sigma_vox": 2.0}
    with pytest.raises(ValueError, match="not bound"):
        again.score(_scan(np.zeros(SHAPE)))
    with pytest.raises(ValueError, match="needs the scorer 'base'"):
        again.bind({}, {"scorers": {}})
    with pytest.raises(ValueError, match="positive spread"):
        LocationNormalisedScorer("base", mean, np.zeros(SHAPE, np.float32))
    again.bind({"base": _Constant()}, {"scorers": {"base": {"postprocess": IDENTITY}}})
    with pytest.raises(ValueError, match="does not fit"):
        again.score(EncodedScan(np.zeros((4, 4, 4), np.float32), np.ones((4, 4, 4), bool), np.zeros(1)))


def _asymmetric_scan(bump_x: int) -> EncodedScan:
    """A scan whose image has a bump at x = ``bump_x`` and whose latent differs from the mirrored copy's in the
    cells of that half (what a one-sided lesion does)."""
    image = np.zeros(SHAPE, np.float32)
    image[2:4, 3:5, bump_x] = 5.0
    scan = _scan(image)
    latent = np.zeros((3, 2, 2, 3), np.float32)
    mirrored = latent.copy()
    cell = 0 if bump_x < SHAPE[2] // 2 else 2
    latent[:, :, :, cell] = 1.0
    mirrored[:, :, :, 2 - cell] = 1.0
    scan.latent, scan.mirrored_latent = latent, mirrored
    return scan


def test_asymmetry_is_added_on_the_hotter_side_only() -> None:
    zeros, ones = np.zeros(SHAPE, np.float32), np.ones(SHAPE, np.float32)
    plain = LocationNormalisedScorer("base", zeros, ones)
    with_asym = LocationNormalisedScorer("base", zeros, ones, asymmetry=(zeros, ones), asymmetry_weight=0.5)
    for scorer in (plain, with_asym):
        scorer.bind({"base": _Constant()}, {"scorers": {"base": {"postprocess": IDENTITY}}})
    scan = _asymmetric_scan(bump_x=2)
    extra = with_asym.score(scan) - plain.score(scan)
    bump, mirror = (slice(2, 4), slice(3, 5), 2), (slice(2, 4), slice(3, 5), SHAPE[2] - 1 - 2)
    assert np.all(extra[bump] > 0.05) and np.all(extra[mirror] == 0.0)  # ties (both sides 0) keep it on both
    assert np.all(extra >= 0.0) and np.all(extra[~scan.mask] == 0.0)
    symmetric = _asymmetric_scan(bump_x=2)
    symmetric.mirrored_latent = symmetric.latent.copy()
    np.testing.assert_array_equal(with_asym.score(symmetric), plain.score(symmetric))


def test_asymmetry_state_round_trip_and_weight_rule() -> None:
    zeros, ones = np.zeros(SHAPE, np.float32), np.ones(SHAPE, np.float32)
    scorer = LocationNormalisedScorer("base", zeros, ones, asymmetry=(zeros, 2 * ones), asymmetry_weight=0.5)
    arrays, meta = scorer.state()
    again = LocationNormalisedScorer.from_state(arrays, meta)
    assert again.asymmetry_weight == 0.5 and np.all(again.asymmetry[1] == 2.0) and again.mirror_average
    assert LocationNormalisedScorer.from_state(*LocationNormalisedScorer("b", zeros, ones).state()).asymmetry is None
    with pytest.raises(ValueError, match="exactly when"):
        LocationNormalisedScorer("base", zeros, ones, asymmetry_weight=0.5)
    with pytest.raises(ValueError, match="exactly when"):
        LocationNormalisedScorer("base", zeros, ones, asymmetry=(zeros, ones))
    with pytest.raises(ValueError, match="one shape"):
        LocationNormalisedScorer("base", zeros, ones, asymmetry=(zeros[:2], ones[:2]), asymmetry_weight=0.5)


def test_symmetric_support_is_both_sides_inside_and_deep() -> None:
    mask = np.zeros(SHAPE, bool)
    mask[1:-1, 1:-1, 1:8] = True  # reaches x = 7 on one side, x = 2 on the other at most (mirror of 7)
    support = symmetric_support(mask, 0)
    assert np.array_equal(support, mask)
    inner = symmetric_support(mask, 1)
    both = mask & mask[..., ::-1]
    assert inner.sum() < both.sum() and np.all(both[inner]) and np.array_equal(inner, inner[..., ::-1])


def test_asymmetry_inner_voxels_drops_the_edge_and_round_trips() -> None:
    zeros, ones = np.zeros(SHAPE, np.float32), np.ones(SHAPE, np.float32)
    edge = LocationNormalisedScorer("base", zeros, ones, asymmetry=(zeros, ones), asymmetry_weight=0.5)
    deep = LocationNormalisedScorer(
        "base", zeros, ones, asymmetry=(zeros, ones), asymmetry_weight=0.5, asymmetry_inner_voxels=1
    )
    for scorer in (edge, deep):
        scorer.bind({"base": _Constant()}, {"scorers": {"base": {"postprocess": IDENTITY}}})
    scan = _asymmetric_scan(bump_x=2)
    support = symmetric_support(scan.mask, 1)
    plain = deep.normalise(deep.base_map(scan), scan.mask)
    assert np.all((deep.score(scan) - plain)[~support] == 0.0)
    assert np.any((edge.score(scan) - plain)[~support & scan.mask] > 0.0)
    assert LocationNormalisedScorer.from_state(*deep.state()).asymmetry_inner_voxels == 1
    with pytest.raises(ValueError, match="whole number"):
        LocationNormalisedScorer(
            "b", zeros, ones, asymmetry=(zeros, ones), asymmetry_weight=0.5, asymmetry_inner_voxels=-1
        )


def test_an_unchanged_base_map_stores_no_statistics_and_scores_the_same() -> None:
    zeros, ones = np.zeros(SHAPE, np.float32), np.ones(SHAPE, np.float32)
    rng = np.random.default_rng(3)
    asym = (rng.normal(size=SHAPE).astype(np.float32), (1.0 + rng.random(SHAPE)).astype(np.float32))
    scorer = LocationNormalisedScorer("constant", zeros, ones, None, asym, 0.5, 1)
    arrays, meta = scorer.state()
    assert set(arrays) == {"asymmetry_mean", "asymmetry_spread"} and meta["params"]["base_normalised"] is False
    loaded = LocationNormalisedScorer.from_state(arrays, meta)
    assert loaded.base_unchanged and np.array_equal(loaded.mean, zeros) and np.array_equal(loaded.spread, ones)
    normalised = LocationNormalisedScorer("constant", asym[0], asym[1], None, asym, 0.5, 1)
    arrays, meta = normalised.state()
    assert {"mean", "spread"} <= set(arrays) and meta["params"]["base_normalised"] is True
    with pytest.raises(ValueError, match="changes nothing"):
        LocationNormalisedScorer.from_state({}, {"params": {"base": "constant", "base_normalised": False}})
