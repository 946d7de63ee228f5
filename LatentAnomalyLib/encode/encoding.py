"""The one way images become latent maps: detection, training, calibration and the research scripts call
:func:`encode`, so a bundle's scorers are fitted and calibrated on exactly what detection computes.

Inputs are model-grid images (N, D, H, W). Batches of ``batch_size`` images go through the encoder
together (training uses 4, detection and calibration 1: the callers keep the batch sizes their results
were produced with). On CUDA out-of-memory the whole request is run again on the CPU, and the result
says so.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..score.base import mirror_x

CPU_FALLBACK_MESSAGE = "the GPU ran out of memory; running the encoder on the CPU instead"


@dataclass
class Encoded:
    """Float32 arrays on the CPU, one entry per input image.

    ``latents`` (N, C, d, h, w), standardised when statistics were given; ``mirrored``: the latent maps of
    the left-right mirrored images; ``reconstructions`` (N, D, H, W): the decoder's output, and
    ``filtered``: the prefiltered input it is compared with; ``device``: where the encoder ran;
    ``message``: for the user, when it ran on the CPU instead of the GPU.
    """

    latents: np.ndarray
    mirrored: np.ndarray | None = None
    reconstructions: np.ndarray | None = None
    filtered: np.ndarray | None = None
    device: str = "cpu"
    message: str | None = None


def standardise_latent(latent: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """Per-channel standardisation of one (C, d, h, w) or many (N, C, d, h, w) latent maps, as float32."""
    shape = (-1, 1, 1, 1)
    return ((latent - mean.reshape(shape)) / std.reshape(shape)).astype(np.float32)


def encode(
    encoder: torch.nn.Module,
    images: np.ndarray,
    device: str = "cpu",
    *,
    mirrored: bool = False,
    reconstruction: bool = False,
    stats: tuple[np.ndarray, np.ndarray] | None = None,
    batch_size: int = 1,
) -> Encoded:
    """Latent maps of ``images`` (N, D, H, W), and when asked those of their mirrored copies and the reconstructions.

    ``stats`` (mean, std per channel) standardises the latent maps (see :func:`standardise_latent`).
    The encoder is moved to the device it runs on.
    """
    try:
        result = _encode(encoder, images, device, mirrored, reconstruction, batch_size)
    except torch.cuda.OutOfMemoryError:
        if not device.startswith("cuda"):
            raise
        torch.cuda.empty_cache()
        result = _encode(encoder, images, "cpu", mirrored, reconstruction, batch_size)
        result.message = CPU_FALLBACK_MESSAGE
    if stats is not None:
        result.latents = standardise_latent(result.latents, *stats)
        if result.mirrored is not None:
            result.mirrored = standardise_latent(result.mirrored, *stats)
    return result


@torch.inference_mode()
def _encode(
    encoder: torch.nn.Module, images: np.ndarray, device: str, mirrored: bool, reconstruction: bool, batch_size: int
) -> Encoded:
    encoder.to(device)
    latents, recs, filtered = _batches(encoder, images, device, reconstruction, batch_size)
    result = Encoded(latents, device=device)
    if reconstruction:
        result.reconstructions, result.filtered = recs, filtered
    if mirrored:
        result.mirrored = _batches(encoder, mirror_x(images), device, False, batch_size)[0]
    return result


def _batches(
    encoder: torch.nn.Module, images: np.ndarray, device: str, reconstruction: bool, batch_size: int
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    latents, recs, filtered = [], [], []
    for start in range(0, len(images), batch_size):
        x = torch.from_numpy(np.ascontiguousarray(images[start : start + batch_size], dtype=np.float32))
        x = x[:, None].to(device)
        z = encoder.encode(x)
        latents.append(z.float().cpu().numpy())
        if reconstruction:
            recs.append(encoder.decode(z)[:, 0].float().cpu().numpy())
            filtered.append(encoder.prefilter(x)[:, 0].float().cpu().numpy())
    if not reconstruction:
        return np.concatenate(latents), None, None
    return np.concatenate(latents), np.concatenate(recs), np.concatenate(filtered)
