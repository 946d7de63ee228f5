"""Every scorer: healthy-like inputs score low, anomalies high; state round trips; agreement with scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.neighbors import LocalOutlierFactor
from sklearn.svm import OneClassSVM

from LatentAnomalyLib.score.base import EncodedScan
from LatentAnomalyLib.score.family import FAMILY_SCORERS
from LatentAnomalyLib.score.location import LatentSpace, LocationConfig, squared_distances
from LatentAnomalyLib.score.lof import lof_score, lof_state
from LatentAnomalyLib.score.registry import COMBINED_SCORERS, DERIVED_SCORERS, LATENT_SCORERS, SCORERS

SHAPE = (16, 16, 16)  # model grid of the toy problem; latent grid 4 x 4 x 4 at stride 4
CHANNELS = 6
# Encoder families' own scores need a trained family module: tests/score/test_encoders_scorers.py covers them;
# combined scorers sum other scorers' maps: tests/score/test_latent_atlas_sum.py.
# derived scorers normalise another scorer's map: tests/score/test_location_normalised.py.
GENERIC = sorted(
    set(SCORERS) - {cls.name for cls in FAMILY_SCORERS.values()} - set(COMBINED_SCORERS) - set(DERIVED_SCORERS)
)


def _toy_scans(n: int, rng: np.random.Generator, anomaly: bool = False) -> list[EncodedScan]:
    """Latents whose healthy distribution depends on position; an anomaly shifts one corner cell."""
    base = np.linspace(-1, 1, 4)[None, :, None, None] * np.arange(1, CHANNELS + 1)[:, None, None, None]
    scans = []
    for i in range(n):
        latent = (base + 0.3 * rng.standard_normal((CHANNELS, 4, 4, 4))).astype(np.float32)
        image = (0.8 + 0.05 * rng.standard_normal(SHAPE)).astype(np.float32)
        recon = image + 0.02 * rng.standard_normal(SHAPE).astype(np.float32)
        if anomaly:
            latent[:, 1, 1, 1] += 3.0
            image[4:8, 4:8, 4:8] *= 0.5
        scans.append(EncodedScan(image, np.ones(SHAPE, bool), latent, recon, subject=f"s{i}", filtered=image.copy()))
    return scans


def _make(name: str):
    cls = SCORERS[name]
    if name in LATENT_SCORERS:
        return (
            cls(LocationConfig(reference_size=32, whiten_size=64, standardise_samples=32, seed=1), k=5)
            if name in ("lof", "knn")
            else cls(LocationConfig(reference_size=32, whiten_size=64, standardise_samples=32, seed=1))
        )
    return cls()


@pytest.mark.parametrize("name", GENERIC)
def test_anomaly_scores_higher_than_healthy(name):
    rng = np.random.default_rng(0)
    scorer = _make(name)
    scorer.fit(_toy_scans(40, rng))
    healthy = scorer.score(_toy_scans(1, rng)[0])
    anomalous = scorer.score(_toy_scans(1, rng, anomaly=True)[0])
    region = np.zeros(SHAPE, bool)
    region[4:8, 4:8, 4:8] = True
    assert healthy.shape == SHAPE
    assert anomalous[region].mean() > healthy[region].mean() + 1.0
    assert anomalous[region].mean() > anomalous[~region].mean()


@pytest.mark.parametrize("name", GENERIC)
def test_state_round_trip_gives_identical_scores(name):
    rng = np.random.default_rng(1)
    scorer = _make(name)
    fit = _toy_scans(30, rng)
    scorer.fit(fit)
    arrays, meta = scorer.state()
    if hasattr(scorer, "space"):
        space_arrays, space_meta = scorer.space.state()
        space = LatentSpace.from_state({k: v.copy() for k, v in space_arrays.items()}, space_meta)
        restored = type(scorer).from_state({k: v.copy() for k, v in arrays.items()}, meta, space)
    else:
        restored = type(scorer).from_state({k: v.copy() for k, v in arrays.items()}, meta)
    scan = _toy_scans(1, rng, anomaly=True)[0]
    assert np.allclose(scorer.score(scan), restored.score(scan), atol=1e-5)
    assert all(isinstance(v, np.ndarray) for v in arrays.values())  # data only, never objects


def test_ocsvm_matches_scikit_learn_decision_ordering():
    rng = np.random.default_rng(2)
    scorer = SCORERS["ocsvm"](LocationConfig(reference_size=48, whiten_size=64, seed=3), nu=0.1)
    scorer.fit(_toy_scans(30, rng))
    reference = scorer.space.reference(slice(0, 1))[0].astype(np.float64)
    svm = OneClassSVM(nu=0.1, gamma=float(scorer.arrays["gamma"][0]), tol=1e-4).fit(reference)
    queries = rng.standard_normal((1, 50, CHANNELS)).astype(np.float32) * 1.5
    ours = scorer._score_local(queries, slice(0, 1))[0]
    decision = svm.decision_function(queries[0])
    assert np.corrcoef(np.argsort(np.argsort(ours)), np.argsort(np.argsort(-decision)))[0, 1] > 0.999
    # On the boundary (decision 0) our score is 0 too: log(rho) - log(kernel sum) with kernel sum = rho.
    inside = np.abs(decision) < 0.05
    if inside.any():
        assert np.all(np.abs(ours[inside]) < 0.1)


def test_lof_matches_scikit_learn_novelty_scores():
    rng = np.random.default_rng(3)
    reference = rng.standard_normal((1, 60, 4)).astype(np.float32)
    queries = rng.standard_normal((1, 25, 4)).astype(np.float32) * 2
    k = 7
    k_distance, lrd = lof_state(reference, k)
    ours = lof_score(np.sqrt(squared_distances(queries, reference)), k_distance, lrd, k)[0]
    sk = LocalOutlierFactor(n_neighbors=k, novelty=True).fit(reference[0])
    assert np.allclose(ours, -sk.score_samples(queries[0]), rtol=1e-3)


def test_whitening_makes_location_spread_isotropic():
    rng = np.random.default_rng(4)
    space = LatentSpace(LocationConfig(reference_size=64, whiten_size=256, seed=5)).fit(_toy_scans(60, rng))
    reference = space.reference()
    covariance = np.einsum("pmc,pmd->pcd", reference, reference) / reference.shape[1]
    eye = np.eye(CHANNELS)[None]
    assert np.abs(covariance - eye).mean() < 0.35  # near-identity (shrinkage and sampling keep it from exact)


def test_neighbourhood_pooling_stays_on_grid():
    from LatentAnomalyLib.score.location import neighbourhood_sample

    rng = np.random.default_rng(6)
    latents = np.arange(2 * 1 * 3 * 3 * 3, dtype=np.float32).reshape(2, 1, 3, 3, 3)
    samples = neighbourhood_sample(latents, np.array([[0, 0, 0], [2, 2, 2]]), 200, 1, rng)
    corner = set(latents[:, 0, :2, :2, :2].ravel().tolist())
    assert set(samples[0, :, 0].tolist()) <= corner  # clipped at the grid edge, never wrapped


def test_training_loops_run_and_reduce_their_loss():
    """Both trainers on a few toy volumes: the loss goes down, outputs have the expected shapes."""
    from LatentAnomalyLib.encode.encoding import encode
    from LatentAnomalyLib.encode.families import EncoderConfig
    from LatentAnomalyLib.preprocess.brainmask_net import BrainMaskConfig
    from LatentAnomalyLib.training.brainmask_trainer import BrainMaskTrainConfig, train_brainmask
    from LatentAnomalyLib.training.encoder_trainer import EncoderTrainConfig, train_encoder

    rng = np.random.default_rng(7)
    heads = []
    for _ in range(4):
        label = np.zeros((24, 24, 24), np.float32)
        label[6:18, 5:19, 6:18] = 1
        heads.append(((0.4 + 0.5 * label + 0.05 * rng.standard_normal(label.shape)).astype(np.float32), label))
    _, metrics = train_brainmask(
        heads,
        heads[:1],
        BrainMaskConfig(features=(4, 4, 8, 8, 8, 4)),
        BrainMaskTrainConfig(epochs=6, batch_size=2),
        log=lambda s: None,
    )
    assert metrics["loss_history"][-1] < metrics["loss_history"][0]
    images = np.stack([h[0] for h in heads]) * np.stack([h[1] for h in heads])
    masks = np.stack([h[1] > 0 for h in heads])
    config = EncoderConfig(family="ae", channels=(4, 8, 8), latent_channels=4, input_sigma_vox=1.0)
    model, metrics = train_encoder(
        images, masks, config, EncoderTrainConfig(epochs=6, batch_size=2), log=lambda s: None
    )
    history = [h["reconstruction"] for h in metrics["loss_history"]]
    assert history[-1] < history[0]
    assert encode(model, images, batch_size=4).latents.shape == (4, 4, 6, 6, 6)


def test_gaussian4mm_scores_a_grid_twice_as_fine_from_one_mean_per_cell():
    """The 4 mm scorer stores one mean per 8 mm cell because interpolation commutes with the mean."""
    from LatentAnomalyLib.score.gaussian_fine import upsample_latent

    rng = np.random.default_rng(5)
    scans = _toy_scans(30, rng)
    scorer = _make("gaussian4mm")
    scorer.fit(scans)
    assert scorer.arrays["cell_mean"].shape == scans[0].latent.shape
    mean_of_upsampled = np.mean([upsample_latent(s.latent) for s in scans], axis=0)
    assert np.allclose(upsample_latent(np.mean([s.latent for s in scans], axis=0)), mean_of_upsampled, atol=1e-5)
    anomalous = _toy_scans(1, rng, anomaly=True)[0]
    grid = scorer.score_latent_grid(anomalous.latent)
    assert grid.shape == tuple(2 * n for n in anomalous.latent.shape[1:])
    # the shifted cell (1, 1, 1) covers fine points 2..3; they score highest
    assert np.unravel_index(np.argmax(grid), grid.shape) in {(a, b, c) for a in (2, 3) for b in (2, 3) for c in (2, 3)}


def _mirror_scorer(rng: np.random.Generator):
    scorer = SCORERS["gaussian4mm"](
        LocationConfig(reference_size=32, whiten_size=64, standardise_samples=32, seed=1), mirror_average=True
    )
    scorer.fit(_toy_scans(30, rng))
    return scorer


def test_gaussian4mm_mirror_average_commutes_with_mirroring_the_scan():
    """Averaging a scan's map with its mirrored view's map: scoring the mirrored scan gives the mirrored map."""
    from LatentAnomalyLib.score.base import mirror_x, needs_mirror

    rng = np.random.default_rng(8)
    scorer = _mirror_scorer(rng)
    assert needs_mirror(scorer) and not needs_mirror(_make("gaussian4mm"))
    scan = _toy_scans(1, rng, anomaly=True)[0]
    scan.mask[:, :, :3] = False  # an asymmetric brain mask
    scan.mirrored_latent = _toy_scans(1, rng)[0].latent
    swapped = EncodedScan(mirror_x(scan.image), mirror_x(scan.mask), scan.mirrored_latent)
    swapped.mirrored_latent = scan.latent
    heat = scorer.score(scan)
    assert np.allclose(scorer.score(swapped), mirror_x(heat), atol=1e-5)
    arrays, meta = scorer.state()
    single = type(scorer).from_state(arrays, {**meta, "params": {}}, scorer.space)  # same state, one view
    assert np.allclose(heat, 0.5 * (single.score(scan) + mirror_x(single.score(swapped))), atol=1e-5)
    assert not np.allclose(heat, single.score(scan), atol=1e-3)


def test_gaussian4mm_mirror_average_needs_the_mirrored_latent_and_survives_a_round_trip():
    rng = np.random.default_rng(9)
    scorer = _mirror_scorer(rng)
    scan = _toy_scans(1, rng, anomaly=True)[0]
    with pytest.raises(ValueError, match="mirrored"):
        scorer.score(scan)
    arrays, meta = scorer.state()
    restored = type(scorer).from_state(arrays, meta, scorer.space)
    assert restored.mirror_average
    scan.mirrored_latent = scan.latent[..., ::-1].copy()
    assert np.allclose(restored.score(scan), scorer.score(scan), atol=1e-6)
