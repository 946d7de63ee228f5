"""Choosing where the networks run, and falling back to the CPU when the GPU cannot."""

from __future__ import annotations

import numpy as np
import torch

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(requested: str) -> tuple[str, str | None]:
    """(device, message for the user or None). ``cuda`` without CUDA falls back with a message."""
    if requested not in DEVICES:
        raise ValueError(f"device must be one of {', '.join(DEVICES)}")
    if requested == "cpu":
        return "cpu", None
    if torch.cuda.is_available():
        return "cuda", None
    if requested == "cuda":
        return "cpu", "CUDA was requested but is not available; running on the CPU"
    return "cpu", None


def _run(
    model: torch.nn.Module, image: np.ndarray, device: str, reconstruction: bool
) -> tuple[np.ndarray, np.ndarray | None]:
    """Latent map and, when asked, the reconstruction stacked with its reference (prefiltered input)."""
    model.to(device)
    x = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[None, None].to(device)
    with torch.inference_mode():
        z = model.encode(x)
        rec = None
        if reconstruction:
            rec = torch.stack([model.decode(z)[0, 0], model.prefilter(x)[0, 0]]).float().cpu().numpy()
    return z[0].float().cpu().numpy(), rec


def encode_with_fallback(
    model: torch.nn.Module, image: np.ndarray, device: str, reconstruction: bool = False
) -> tuple[np.ndarray, np.ndarray | None, str, str | None]:
    """Encode on ``device``; on CUDA out-of-memory, retry on the CPU and say so.

    Returns (latent, reconstruction or None, device actually used, message or None); a
    reconstruction is a (2, D, H, W) stack of the decoder's output and the prefiltered input.
    """
    if device == "cuda":
        try:
            latent, rec = _run(model, image, "cuda", reconstruction)
            return latent, rec, "cuda", None
        except torch.cuda.OutOfMemoryError:
            torch.cuda.empty_cache()
            message = "the GPU ran out of memory; running the encoder on the CPU instead"
            latent, rec = _run(model, image, "cpu", reconstruction)
            return latent, rec, "cpu", message
    latent, rec = _run(model, image, "cpu", reconstruction)
    return latent, rec, "cpu", None
