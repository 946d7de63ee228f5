"""Encoder families: one torch module per family, built from a config stored in the bundle.

All families share the interface of :class:`ConvAutoEncoder` (``encode``, ``decode``, ``forward``
returning (reconstruction, latent)); they differ in how they are trained (see
``LatentAnomalyLib.training.encoder_trainer``) and, for VQ-VAE, in a quantisation step.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from .conv_ae import ConvAutoEncoder

FAMILIES = ("ae", "siamese")


@dataclass(frozen=True)
class EncoderConfig:
    family: str = "siamese"
    channels: tuple[int, int, int] = (16, 32, 64)
    latent_channels: int = 16
    stride: int = 4
    input_sigma_vox: float = 0.0


def build_encoder(config: EncoderConfig) -> nn.Module:
    """A fresh, untrained module for ``config`` (weights come from the bundle's safetensors)."""
    if config.family not in FAMILIES:
        raise ValueError(f"unknown encoder family {config.family!r}; known: {', '.join(FAMILIES)}")
    return ConvAutoEncoder(tuple(config.channels), config.latent_channels, config.input_sigma_vox)
