"""Encoder checkpoints: an interrupted run resumes after its last epoch and ends exactly as an uninterrupted one."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from LatentAnomalyLib.encode.families import EncoderConfig
from LatentAnomalyLib.training import checkpoint as ckpt
from LatentAnomalyLib.training.encoder_trainer import EncoderTrainConfig, train_encoder

from .test_train_outliers import _impure_set


class Interrupted(Exception):
    pass


def _stop_at(epoch: int):
    def hook(done: int, planned: int, losses: dict) -> None:
        if done == epoch:
            raise Interrupted

    return hook


def _weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize(
    "family, options",
    [
        ("ae", {}),
        ("vae", {}),  # posterior sampling draws from torch's global RNG
        ("vqvae", {"outlier_removal": True, "outlier_every": 2}),  # EMA codebook buffers; a restart mid-run
    ],
)
def test_a_resumed_run_ends_exactly_as_an_uninterrupted_one(tmp_path, family, options):
    images, masks = _impure_set(6, [4])
    config = EncoderConfig(family=family, channels=(4, 8, 8), latent_channels=4, input_sigma_vox=0.0, codebook_size=8)
    train = EncoderTrainConfig(epochs=4, batch_size=2, outlier_gamma=1.2, **options)
    quiet = lambda s: None  # noqa: E731
    whole, whole_metrics = train_encoder(images, masks, config, train, log=quiet)
    folder = tmp_path / "checkpoint"
    with pytest.raises(Interrupted):  # killed during the third epoch: the checkpoint holds two
        train_encoder(images, masks, config, train, log=quiet, on_epoch=_stop_at(3), checkpoint=folder)
    saved = ckpt.peek(folder, ckpt.fingerprint(images, masks, config, train))
    assert len(saved.history) == 2
    # with outlier removal every 2 epochs the decision came after epoch 2: a restart at epoch 0 of the rest
    assert saved.epoch == (0 if whole_metrics["removed"] else 2)
    logs: list[str] = []
    resumed, metrics = train_encoder(images, masks, config, train, log=logs.append, checkpoint=folder)
    assert any(f"resumed after epoch {saved.epoch}" in line for line in logs)
    assert metrics["loss_history"] == whole_metrics["loss_history"]
    assert metrics["removed"] == whole_metrics["removed"]
    for key, value in _weights(whole).items():
        assert torch.equal(value, resumed.state_dict()[key]), key


def test_a_checkpoint_of_other_inputs_is_ignored(tmp_path):
    images, masks = _impure_set(4, [])
    config = EncoderConfig(family="ae", channels=(4, 8, 8), latent_channels=4)
    train = EncoderTrainConfig(epochs=2, batch_size=2)
    folder = tmp_path / "checkpoint"
    with pytest.raises(Interrupted):
        train_encoder(images, masks, config, train, log=lambda s: None, on_epoch=_stop_at(2), checkpoint=folder)
    other = EncoderTrainConfig(epochs=2, batch_size=2, learning_rate=1e-3)
    assert ckpt.peek(folder, ckpt.fingerprint(images, masks, config, other)) is None
    assert ckpt.peek(folder, ckpt.fingerprint(images[::-1].copy(), masks, config, train)) is None
    logs: list[str] = []
    _, metrics = train_encoder(images, masks, config, other, log=logs.append, checkpoint=folder)
    assert not any("resumed" in line for line in logs) and len(metrics["loss_history"]) == 2
    assert np.isfinite(metrics["loss_history"][-1]["reconstruction"])
