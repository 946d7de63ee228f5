"""Each encoder family's own score as a scorer: the family module's quantity, from the latent map alone."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from LatentAnomalyLib.encode.families import EncoderConfig, build_encoder
from LatentAnomalyLib.encode.gmvae import energy
from LatentAnomalyLib.score.base import EncodedScan
from LatentAnomalyLib.score.family import FAMILY_SCORERS
from LatentAnomalyLib.score.registry import SCORERS, scorer_class
from LatentAnomalyLib.training.config import TrainConfig

SHAPE = (16, 16, 16)
C = 4


def _model(family: str) -> torch.nn.Module:
    torch.manual_seed(0)
    config = EncoderConfig(family=family, channels=(4, 8, 8), latent_channels=C, input_sigma_vox=1.0, codebook_size=8)
    model = build_encoder(config).eval()
    if family == "gmvae":
        x = torch.rand(4, 1, *SHAPE)
        model.after_training(x, torch.ones_like(x, dtype=torch.bool), 4)
    return model


def _scan(latent: np.ndarray, mean: np.ndarray, std: np.ndarray) -> EncodedScan:
    standardised = ((latent - mean[:, None, None, None]) / std[:, None, None, None]).astype(np.float32)
    return EncodedScan(np.zeros(SHAPE, np.float32), np.ones(SHAPE, bool), standardised)


def _reference(family: str, model: torch.nn.Module, z: torch.Tensor) -> np.ndarray:
    """The family's quantity computed by the module itself, per latent location."""
    with torch.no_grad():
        if family == "vae":
            return model.kl(z[None])[0, 0].numpy()
        if family == "vqvae":
            return model.quantise(z[None])[1][0, 0].sqrt().numpy()
        flat = z.reshape(C, -1).t().double()
        buffers = (model.mix_weight.double(), model.mix_mean.double(), model.mix_cov.double())
        return energy(flat, *buffers).reshape(z.shape[1:]).numpy()


@pytest.mark.parametrize("family", sorted(FAMILY_SCORERS))
def test_family_score_is_the_modules_quantity_and_round_trips(family):
    model = _model(family)
    cls = FAMILY_SCORERS[family]
    assert SCORERS[cls.name] is cls and scorer_class(cls.name) is cls
    rng = np.random.default_rng(0)
    mean, std = rng.normal(size=C).astype(np.float32), rng.uniform(0.5, 2, size=C).astype(np.float32)
    scorer = cls(standardise=False)
    scorer.attach(model, mean, std)
    latent = rng.normal(size=(C, 4, 4, 4)).astype(np.float32)
    grid = scorer._grid_score(_scan(latent, mean, std))
    assert np.allclose(grid, _reference(family, model, torch.from_numpy(latent)), rtol=1e-4, atol=1e-4)
    arrays, meta = scorer.state()
    again = cls.from_state(arrays, meta)
    scan = _scan(latent, mean, std)
    assert np.array_equal(again.score(scan), scorer.score(scan))
    assert again.score(scan).shape == SHAPE


@pytest.mark.parametrize("family", sorted(FAMILY_SCORERS))
def test_family_score_flags_a_latent_far_from_the_healthy_ones(family):
    model = _model(family)
    rng = np.random.default_rng(1)
    with torch.no_grad():
        healthy = [model.encode(torch.rand(1, 1, *SHAPE))[0].numpy() for _ in range(12)]
    flat = np.stack(healthy).transpose(1, 0, 2, 3, 4).reshape(C, -1)
    mean, std = flat.mean(1), flat.std(1) + 1e-6
    scorer = FAMILY_SCORERS[family]()
    scorer.attach(model, mean, std)
    scorer.fit([_scan(z, mean, std) for z in healthy[:10]])
    assert "center" in scorer.arrays and scorer.arrays["spread"].min() > 0
    normal = scorer.score(_scan(healthy[10], mean, std))
    odd = healthy[11].copy()
    odd[:, 1:3, 1:3, 1:3] += 8 * std[:, None, None, None] * np.sign(rng.normal(size=(C, 1, 1, 1)))
    anomalous = scorer.score(_scan(odd, mean, std))
    region = np.zeros(SHAPE, bool)
    region[6:10, 6:10, 6:10] = True  # centre of the changed cells
    assert anomalous[region].mean() > normal[region].mean() + 1.0
    assert anomalous[region].mean() > anomalous[~region].mean()


def test_family_score_needs_its_family():
    scorer = FAMILY_SCORERS["vqvae"]()
    with pytest.raises(ValueError, match="family 'vqvae'"):
        scorer.attach(_model("ae"), np.zeros(C), np.ones(C))
    with pytest.raises(ValueError, match="attach"):
        FAMILY_SCORERS["vae"]().fit([])


def test_config_refuses_a_family_score_of_another_family():
    raw = {"name": "x", "version": "0", "encoder": {"family": "ae"}, "scorers": [{"name": "vae_kl"}]}
    with pytest.raises(ValueError, match="not the score of encoder family 'ae'"):
        TrainConfig.from_dict(raw)
    raw["encoder"]["family"] = "vae"
    assert TrainConfig.from_dict(raw).scorers[0].name == "vae_kl"
