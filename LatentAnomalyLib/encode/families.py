"""Encoder families: one torch module per family, built from a config stored in the bundle.

Every family shares the interface of :class:`ConvAutoEncoder`: ``prefilter``, ``encode`` (image ->
latent map (B, C, D/4, H/4, W/4), the same shape in every family so every latent scorer runs on
every family), ``decode`` and ``forward`` (reconstruction, latent). For training each family adds
``train_forward(x, zmask) -> (reconstruction, latent, named loss terms)`` and ``after_training``.

- ``ae``      :class:`ConvAutoEncoder` (restoration objective only; the bundled model's family)
- ``siamese`` :class:`~.siamese.SiameseAutoEncoder` (+ cross-subject latent invariance, Alaverdyan et al. 2020)
- ``vae``     :class:`~.vae.VariationalAutoEncoder` (latent = posterior mean; per-location KL score)
- ``vqvae``   :class:`~.vqvae.VQAutoEncoder` (EMA codebook; latent = encoder output before quantisation)
- ``gmvae``   :class:`~.gmvae.MixtureAutoEncoder` (DAGMM-style Gaussian mixture over latent vectors; energy)
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from .conv_ae import ConvAutoEncoder

FAMILIES = ("ae", "siamese", "vae", "vqvae", "gmvae")


@dataclass(frozen=True)
class EncoderConfig:
    family: str = "siamese"
    channels: tuple[int, int, int] = (16, 32, 64)
    latent_channels: int = 16
    stride: int = 4
    input_sigma_vox: float = 0.0
    codebook_size: int = 256  # vqvae: number of codes
    codebook_decay: float = 0.99  # vqvae: EMA decay of the codebook statistics
    mixture_components: int = 4  # gmvae: Gaussian components
    estimation_hidden: int = 32  # gmvae: width of the estimation network (memberships)


def build_encoder(config: EncoderConfig) -> nn.Module:
    """A fresh, untrained module for ``config`` (weights come from the bundle's safetensors)."""
    channels = tuple(config.channels)
    if config.family == "ae":
        return ConvAutoEncoder(channels, config.latent_channels, config.input_sigma_vox)
    if config.family == "siamese":
        from .siamese import SiameseAutoEncoder

        return SiameseAutoEncoder(channels, config.latent_channels, config.input_sigma_vox, config.stride)
    if config.family == "vae":
        from .vae import VariationalAutoEncoder

        return VariationalAutoEncoder(channels, config.latent_channels, config.input_sigma_vox)
    if config.family == "vqvae":
        from .vqvae import VQAutoEncoder

        return VQAutoEncoder(
            channels, config.latent_channels, config.input_sigma_vox, config.codebook_size, config.codebook_decay
        )
    if config.family == "gmvae":
        from .gmvae import MixtureAutoEncoder

        return MixtureAutoEncoder(
            channels,
            config.latent_channels,
            config.input_sigma_vox,
            config.mixture_components,
            config.estimation_hidden,
        )
    raise ValueError(f"unknown encoder family {config.family!r}; known: {', '.join(FAMILIES)}")
