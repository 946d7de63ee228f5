"""The one encode function: latent maps, mirrored copies, reconstructions, standardisation, the CPU fallback."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from LatentAnomalyLib.encode import encoding
from LatentAnomalyLib.encode.encoding import CPU_FALLBACK_MESSAGE, encode, standardise_latent
from LatentAnomalyLib.encode.families import EncoderConfig, build_encoder
from LatentAnomalyLib.score.base import mirror_x


@pytest.fixture(scope="module")
def encoder() -> torch.nn.Module:
    torch.manual_seed(3)
    config = EncoderConfig(family="ae", channels=(4, 8, 8), latent_channels=4, input_sigma_vox=1.0)
    return build_encoder(config).eval()


def _images(n: int) -> np.ndarray:
    return np.random.default_rng(4).random((n, 16, 16, 16)).astype(np.float32)


def test_latents_mirrored_and_reconstructions_are_the_networks_outputs(encoder):
    images = _images(3)
    out = encode(encoder, images, mirrored=True, reconstruction=True)
    with torch.inference_mode():
        x = torch.from_numpy(images[1])[None, None]
        z = encoder.encode(x)
        np.testing.assert_array_equal(out.latents[1], z[0].numpy())
        np.testing.assert_array_equal(out.reconstructions[1], encoder.decode(z)[0, 0].numpy())
        np.testing.assert_array_equal(out.filtered[1], encoder.prefilter(x)[0, 0].numpy())
        flipped = encoder.encode(torch.flip(x, dims=(-1,)))[0].numpy()
    np.testing.assert_array_equal(out.mirrored[1], flipped)
    assert out.latents.shape == (3, 4, 4, 4, 4) and out.device == "cpu" and out.message is None
    plain = encode(encoder, images)
    assert plain.mirrored is None and plain.reconstructions is None and plain.filtered is None


def test_batches_and_standardisation(encoder):
    images = _images(5)
    one, four = encode(encoder, images), encode(encoder, images, batch_size=4)
    np.testing.assert_allclose(one.latents, four.latents, atol=1e-5)  # batching moves the last bits only
    mean = np.arange(4, dtype=np.float32)
    std = np.full(4, 2.0, dtype=np.float32)
    standard = encode(encoder, images, mirrored=True, stats=(mean, std))
    expected = (one.latents - mean[None, :, None, None, None]) / std[None, :, None, None, None]
    np.testing.assert_array_equal(standard.latents, expected.astype(np.float32))
    mirrored = standardise_latent(encode(encoder, mirror_x(images)).latents, mean, std)
    np.testing.assert_array_equal(standard.mirrored, mirrored)
    np.testing.assert_array_equal(standardise_latent(one.latents[2], mean, std), expected[2])


def test_cuda_out_of_memory_runs_everything_again_on_the_cpu(encoder, monkeypatch):
    real = encoding._encode
    devices = []

    def fake(encoder, images, device, *args):
        devices.append(device)
        if device.startswith("cuda"):
            raise torch.cuda.OutOfMemoryError("CUDA out of memory")
        return real(encoder, images, device, *args)

    monkeypatch.setattr(encoding, "_encode", fake)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: None)
    out = encode(encoder, _images(2), "cuda:0", mirrored=True)
    assert devices == ["cuda:0", "cpu"] and out.device == "cpu" and out.message == CPU_FALLBACK_MESSAGE
    assert out.latents.shape == out.mirrored.shape == (2, 4, 4, 4, 4)
    monkeypatch.setattr(encoding, "_encode", lambda *a: (_ for _ in ()).throw(torch.cuda.OutOfMemoryError("x")))
    with pytest.raises(torch.cuda.OutOfMemoryError):
        encode(encoder, _images(1), "cpu")  # nowhere to fall back to
