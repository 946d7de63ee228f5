"""Training on random cubes (``encoder_train.patch_size``, the reduced CPU scale of docs/encoders.md)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from LatentAnomalyLib.encode.encoding import encode
from LatentAnomalyLib.encode.families import EncoderConfig
from LatentAnomalyLib.training.encoder_trainer import EncoderTrainConfig, random_patches, train_encoder

from .test_train_outliers import STILL


def _stack(n: int, shape: tuple[int, int, int] = (32, 48, 32)) -> torch.Tensor:
    images = torch.rand((n, 1, *shape))
    masks = torch.zeros((n, 1, *shape))
    masks[:, :, 4:28, 20:44, 4:28] = 1
    return torch.cat([images, masks], dim=1)


def test_cubes_lie_on_the_latent_grid_in_the_brain_and_pairs_share_theirs():
    stack = _stack(6)
    for seed in range(5):
        cubes = random_patches(stack, 16, np.random.default_rng(seed))
        assert cubes.shape == (6, 2, 16, 16, 16)
        for i, cube in enumerate(cubes):
            # find where the cube came from: its image values are unique random numbers
            hits = (stack[i, 0] == cube[0, 0, 0, 0]).nonzero()
            corner = hits[0].tolist()
            assert all(c % 16 == 0 for c in corner)
            source = stack[i, :, corner[0] : corner[0] + 16, corner[1] : corner[1] + 16, corner[2] : corner[2] + 16]
            assert torch.equal(source, cube)
            assert cube[1].sum() > 0  # centred on a brain voxel, so some brain is inside
            if i % 2:
                previous = (stack[i - 1, 0] == cubes[i - 1, 0, 0, 0, 0]).nonzero()[0].tolist()
                assert previous == corner  # the pair's second volume shares the first one's cube


@pytest.mark.parametrize("size", [24, 64])
def test_a_cube_off_the_grid_or_larger_than_the_volume_is_refused(size):
    with pytest.raises(ValueError, match="patch_size"):
        random_patches(_stack(2), size, np.random.default_rng(0))


def test_a_model_trained_on_cubes_encodes_whole_scans_and_removes_outliers_on_whole_scan_losses():
    rng = np.random.default_rng(0)
    z, y, x = np.mgrid[:32, :32, :32]
    images, masks = [], []
    for i in range(10):
        r = ((z - 15.5) / 12) ** 2 + ((y - 15.5) / 13) ** 2 + ((x - 15.5) / 11) ** 2 + rng.normal(0, 0.01)
        mask = r < 1
        image = (0.6 + 0.4 * (1 - r)) * mask
        if i in (2, 7):  # voxel-scale texture everywhere: no cube of these scans looks healthy
            image = image * (1 + 0.9 * np.sign(rng.standard_normal(mask.shape)))
        images.append((image * mask).astype(np.float32))
        masks.append(mask)
    images, masks = np.stack(images), np.stack(masks)
    config = EncoderConfig(family="ae", channels=(4, 8, 8), latent_channels=4, input_sigma_vox=0.0)
    train = EncoderTrainConfig(
        epochs=3, batch_size=2, patch_size=16, outlier_removal=True, outlier_gamma=1.1, outlier_every=3, augment=STILL
    )
    model, metrics = train_encoder(images, masks, config, train, log=lambda s: None)
    decision = metrics["outlier_rounds"][0]
    assert len(decision["losses"]) == 10  # every scan's whole-volume loss, not one cube each
    assert metrics["removed"] == [2, 7]
    losses = {int(k): v for k, v in decision["losses"].items()}
    assert min(losses[2], losses[7]) > decision["threshold"] > max(v for k, v in losses.items() if k not in (2, 7))
    assert encode(model, images[:2], batch_size=4).latents.shape == (2, 4, 8, 8, 8)  # whole 32^3 scans, latent stride 4
