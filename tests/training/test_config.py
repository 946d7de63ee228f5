"""One typed configuration with one seed: every configs/*.json loads, and the top-level seed reaches every stage."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from LatentAnomalyLib import DEFAULT_SEED
from LatentAnomalyLib.training.config import TrainConfig

CONFIGS = sorted(Path(__file__).resolve().parents[2].glob("configs/*.json"))


def _stage_seeds(config: TrainConfig) -> dict[str, int]:
    return {
        "registration": config.preprocess.registration.seed,
        "brainmask_train": config.brainmask_train.seed,
        "encoder_train": config.encoder_train.seed,
        "latent_space": config.latent_space.seed,
        "resolved": config.resolved()["latent_space"]["seed"],
    }


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_every_shipped_configuration_loads_with_todays_seed_everywhere(path):
    config = TrainConfig.from_file(path)
    assert config.seed == DEFAULT_SEED == 20261123  # today's value: results do not change
    assert set(_stage_seeds(config).values()) == {config.seed}


def test_the_top_level_seed_is_handed_down_and_a_different_stage_seed_is_refused():
    raw = json.loads(CONFIGS[0].read_text())
    config = TrainConfig.from_dict({**raw, "seed": 5, "conformal": {**raw.get("conformal", {}), "seed": 5}})
    assert set(_stage_seeds(config).values()) == {5}
    with pytest.raises(ValueError, match=r"encoder_train\.seed is 6 but the configuration.s seed is 5"):
        TrainConfig.from_dict({**raw, "seed": 5, "conformal": {}, "encoder_train": {"seed": 6}})
    with pytest.raises(ValueError, match=r"preprocess\.registration\.seed"):
        TrainConfig.from_dict({**raw, "preprocess": {"registration": {"seed": 1}}})
    same = TrainConfig.from_dict({**raw, "encoder_train": {**raw["encoder_train"], "seed": DEFAULT_SEED}})
    assert same.resolved() == TrainConfig.from_dict(raw).resolved()  # repeating the seed changes nothing
