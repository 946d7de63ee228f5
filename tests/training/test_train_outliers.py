"""Outlier removal (Behrendt et al., ISBI 2022): injected odd scans are dropped, healthy ones kept."""

from __future__ import annotations

import numpy as np
import pytest

from LatentAnomalyLib.encode.families import FAMILIES, EncoderConfig
from LatentAnomalyLib.training.augment import AugmentConfig
from LatentAnomalyLib.training.encoder_trainer import EncoderTrainConfig, train_encoder
from LatentAnomalyLib.training.outliers import OutlierFilter

SHAPE = (16, 16, 16)
# No geometric jitter or degradation: interpolation would blur the injected texture away.
STILL = AugmentConfig(
    rotation_deg=0.0,
    scale=0.0,
    shift_vox=0.0,
    flip_probability=0.0,
    blur_probability=0.0,
    noise_probability=0.0,
    bias_probability=0.0,
    contrast_probability=0.0,
    gamma_probability=0.0,
)


def _impure_set(n_healthy: int, outliers: list[int], seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Smooth 'brains' (a bright ellipsoid); the scans at ``outliers`` carry a voxel-scale high-contrast texture
    (which a stride-4 bottleneck cannot reproduce)."""
    rng = np.random.default_rng(seed)
    z, y, x = np.mgrid[: SHAPE[0], : SHAPE[1], : SHAPE[2]]
    n = n_healthy + len(outliers)
    images, masks = [], []
    for i in range(n):
        centre = 7.5 + rng.normal(scale=0.5, size=3)
        r = ((z - centre[0]) / 6) ** 2 + ((y - centre[1]) / 6.5) ** 2 + ((x - centre[2]) / 5.5) ** 2
        mask = r < 1
        image = (0.6 + 0.4 * (1 - r)) * mask
        if i in outliers:
            image = image * (1 + 0.9 * np.sign(rng.standard_normal(SHAPE)))  # a 'lesion' texture everywhere
        images.append(image.astype(np.float32) * mask)
        masks.append(mask)
    return np.stack(images), np.stack(masks)


def test_filter_drops_scans_above_gamma_times_the_mean():
    outliers = OutlierFilter(gamma=1.5, every=2, rounds=1)
    assert not outliers.due(1) and outliers.due(2)
    outliers.record(np.array([0, 1, 2, 3]), np.array([1.0, 1.0, 1.0, 5.0]))
    outliers.record(np.array([0, 1, 2, 3]), np.array([1.0, 1.2, 0.8, 5.0]))
    drop = outliers.decide(np.arange(4))
    assert drop.tolist() == [3]  # mean 2.0, threshold 3.0
    assert outliers.log[0]["threshold"] == pytest.approx(3.0)
    assert not outliers.due(2)  # one round only


@pytest.mark.parametrize("family", FAMILIES)
def test_training_removes_the_injected_outliers_and_keeps_the_healthy_scans(family):
    injected = [3, 9]
    images, masks = _impure_set(10, injected)
    config = EncoderConfig(family=family, channels=(4, 8, 8), latent_channels=4, input_sigma_vox=0.0, codebook_size=8)
    train = EncoderTrainConfig(
        epochs=3, batch_size=2, outlier_removal=True, outlier_gamma=1.5, outlier_every=3, outlier_rounds=1, augment=STILL
    )
    logs: list[str] = []
    _, metrics = train_encoder(images, masks, config, train, log=logs.append)
    assert metrics["removed"] == injected
    assert metrics["kept"] == [i for i in range(12) if i not in injected]
    round_ = metrics["outlier_rounds"][0]
    losses = {int(k): v for k, v in round_["losses"].items()}
    assert min(losses[i] for i in injected) > round_["threshold"] > max(losses[i] for i in metrics["kept"])
    assert len(metrics["loss_history"]) == 2 * train.epochs  # the epochs before the restart, then a full run
    assert any("outlier removal: 2 of 12" in line for line in logs)


def test_without_outlier_removal_every_scan_is_kept():
    images, masks = _impure_set(4, [1])
    config = EncoderConfig(family="ae", channels=(4, 8, 8), latent_channels=4)
    _, metrics = train_encoder(images, masks, config, EncoderTrainConfig(epochs=1, batch_size=2), log=lambda s: None)
    assert metrics["removed"] == [] and metrics["outlier_rounds"] == []
