"""Encoder families: one interface, the same latent map shape, each family's own terms and statistics."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from LatentAnomalyLib.encode.conv_ae import ConvAutoEncoder
from LatentAnomalyLib.encode.families import FAMILIES, EncoderConfig, build_encoder
from LatentAnomalyLib.encode.gmvae import energy, mixture_statistics
from LatentAnomalyLib.encode.siamese import latent_mask
from LatentAnomalyLib.encode.vqvae import EMACodebook

SHAPE = (16, 16, 16)
TERMS = {
    "ae": set(),
    "siamese": {"invariance", "variance"},
    "vae": {"kl"},
    "vqvae": {"commitment"},
    "gmvae": {"energy", "covariance"},
}


def _config(family: str) -> EncoderConfig:
    return EncoderConfig(family=family, channels=(4, 8, 8), latent_channels=4, input_sigma_vox=1.0, codebook_size=8)


def _batch(n: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    mask = torch.zeros(n, 1, *SHAPE, dtype=torch.bool)
    mask[:, :, 2:14, 2:14, 2:14] = True
    return torch.rand(n, 1, *SHAPE, generator=generator) * mask, mask


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_has_the_same_latent_shape_and_its_own_terms(family):
    model = build_encoder(_config(family))
    x, mask = _batch()
    model.train()
    recon, z, terms = model.train_forward(x, latent_mask(mask, 4))
    assert recon.shape == x.shape
    assert z.shape == (2, 4, 4, 4, 4)
    assert set(terms) == TERMS[family]
    assert all(t.ndim == 0 and torch.isfinite(t) for t in terms.values())
    model.eval()
    with torch.no_grad():
        assert model.encode(x).shape == (2, 4, 4, 4, 4)
        assert model(x)[0].shape == x.shape


@pytest.mark.parametrize("family", FAMILIES)
def test_families_keep_the_autoencoders_state_dict_keys(family):
    """Every family contains the plain autoencoder under the same names (bundles stay readable)."""
    ae_keys = set(ConvAutoEncoder((4, 8, 8), 4, 1.0).state_dict())
    keys = set(build_encoder(_config(family)).state_dict())
    assert ae_keys <= keys
    if family in ("ae", "siamese"):
        assert keys == ae_keys


def test_ae_family_is_exactly_the_plain_autoencoder():
    torch.manual_seed(3)
    a = build_encoder(_config("ae"))
    torch.manual_seed(3)
    b = ConvAutoEncoder((4, 8, 8), 4, 1.0)
    assert type(a) is ConvAutoEncoder
    x, _ = _batch(1)
    with torch.no_grad():
        assert torch.equal(a.eval().encode(x), b.eval().encode(x))


def test_unknown_family_is_refused():
    with pytest.raises(ValueError, match="unknown encoder family"):
        build_encoder(EncoderConfig(family="flow"))


def test_ema_codebook_moves_codes_to_the_clusters_and_restarts_unused_codes():
    torch.manual_seed(0)
    centres = torch.tensor([[3.0, 0.0], [-3.0, 0.0], [0.0, 3.0]])
    book = EMACodebook(8, 2, decay=0.8)
    for _ in range(60):
        flat = (centres[:, None] + 0.1 * torch.randn(3, 50, 2)).reshape(-1, 2)
        book.update(flat, book.nearest(flat)[0])
    nearest_code = torch.cdist(centres, book.embed).min(dim=1).values
    assert (nearest_code < 0.15).all()  # every cluster has a code at its mean
    nearest_centre = torch.cdist(book.embed, centres).min(dim=1).values
    assert (nearest_centre < 0.6).all()  # no code left between clusters or at its random start near 0


def test_vqvae_decodes_the_quantised_latent():
    model = build_encoder(_config("vqvae")).eval()
    x, _ = _batch(1)
    with torch.no_grad():
        z = model.encode(x)
        q, dist2 = model.quantise(z)
        assert torch.equal(model.decode(z), model.decoder(q))
        assert torch.equal(model.decode(q), model.decoder(q))  # codes are fixed points
        assert float(model.quantise(q)[1].max()) < 1e-6 < float(dist2.max())


def test_mixture_statistics_and_energy_of_two_clusters():
    torch.manual_seed(1)
    a = torch.randn(400, 2) * 0.5 + torch.tensor([4.0, 0.0])
    b = torch.randn(400, 2) * 0.5 - torch.tensor([4.0, 0.0])
    z = torch.cat([a, b]).double()
    gamma = torch.cat([torch.tensor([[1.0, 0.0]]).repeat(400, 1), torch.tensor([[0.0, 1.0]]).repeat(400, 1)]).double()
    phi, mu, cov = mixture_statistics(z, gamma)
    assert torch.allclose(phi, torch.tensor([0.5, 0.5]).double())
    assert torch.allclose(mu, torch.tensor([[4.0, 0.0], [-4.0, 0.0]]).double(), atol=0.1)
    assert torch.allclose(torch.diagonal(cov, dim1=1, dim2=2), torch.full((2, 2), 0.25).double(), atol=0.06)
    e = energy(torch.tensor([[4.0, 0.0], [0.0, 0.0], [0.0, 6.0]]).double(), phi, mu, cov)
    assert e[0] < e[1] < e[2]


def test_gmvae_after_training_fits_the_mixture_on_brain_cells():
    model = build_encoder(_config("gmvae")).eval()
    x, mask = _batch(3)
    before = model.mix_mean.clone()
    model.after_training(x, mask, 4)
    assert not torch.equal(before, model.mix_mean)
    assert np.isclose(float(model.mix_weight.sum()), 1.0, atol=1e-5)
    with torch.no_grad():
        z = model.encode(x)
    brain = latent_mask(mask, 4).permute(0, 2, 3, 4, 1).reshape(-1)
    flat = z.permute(0, 2, 3, 4, 1).reshape(-1, 4)[brain]
    weighted = (model.mix_weight[:, None] * model.mix_mean).sum(0)
    assert torch.allclose(weighted, flat.mean(0), atol=1e-4)  # the mixture's mean is the data mean


def test_vae_latent_is_the_posterior_mean_and_training_samples():
    model = build_encoder(_config("vae"))
    x, mask = _batch(1)
    model.train()
    torch.manual_seed(0)
    recon_a, mu_a, _ = model.train_forward(x, latent_mask(mask, 4))
    torch.manual_seed(1)
    recon_b, mu_b, _ = model.train_forward(x, latent_mask(mask, 4))
    assert torch.equal(mu_a, mu_b)
    assert not torch.equal(recon_a, recon_b)  # decoded from different samples
    model.eval()
    with torch.no_grad():
        assert torch.equal(model.encode(x), mu_a.detach())
        assert (model.kl(mu_a) >= 0).all()
