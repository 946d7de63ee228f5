"""One typed configuration with one seed: every configs/*.json loads, and the top-level seed reaches every stage."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from LatentAnomalyLib import DEFAULT_SEED
from LatentAnomalyLib.score.postprocess_config import PostprocessConfig
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


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_postprocess_sections_are_stored_as_the_file_writes_them(path):
    """Typed sections (score/postprocess_config.py) resolve to the file's own JSON: the bundle's bytes do not change."""
    raw = json.loads(path.read_text())
    resolved = TrainConfig.from_dict(raw).resolved()
    assert json.dumps(resolved["postprocess"]) == json.dumps(raw.get("postprocess", {}))
    for spec, entry in zip(resolved["scorers"], raw["scorers"]):
        assert list(spec) == ["name", "params", "standardise", "postprocess"]
        assert json.dumps(spec["postprocess"]) == json.dumps(entry.get("postprocess", {})), spec["name"]


def test_an_unknown_postprocess_option_is_refused_in_one_line():
    raw = json.loads(CONFIGS[0].read_text())
    scorers = [{**raw["scorers"][0], "postprocess": {"median": 3}}, *raw["scorers"][1:]]
    with pytest.raises(ValueError, match=rf"scorer '{raw['scorers'][0]['name']}' postprocess: unknown option\(s\) 'median'"):
        TrainConfig.from_dict({**raw, "scorers": scorers})
    with pytest.raises(ValueError, match=r"^postprocess: scan_normalise must be bool, got 'yes'$"):
        TrainConfig.from_dict({**raw, "postprocess": {"scan_normalise": "yes"}})
    partial = TrainConfig.from_dict({**raw, "postprocess": {"median_size": 5}})
    assert partial.postprocess.apply() == PostprocessConfig(median_size=5)



def _move_first(raw: dict) -> None:
    names = [s["name"] for s in raw["scorers"]]
    raw["scorers"].insert(0, raw["scorers"].pop(names.index("gaussian4mm_atlas")))


def _entry(raw: dict) -> dict:
    return next(s for s in raw["scorers"] if s["name"] == "gaussian4mm_atlas")


@pytest.mark.parametrize(
    ("change", "message"),
    [(_move_first, "must come after the scorers it sums"),
     (lambda raw: _entry(raw).update(postprocess={"median_size": 3}), "its postprocess must be"),
     (lambda raw: _entry(raw).pop("postprocess"), "its postprocess must be"),
     (lambda raw: _entry(raw).update(params={"latent": "gaussian"}), "sums the scorers gaussian4mm and atlas, not gaussian")],
)  # fmt: skip
def test_combined_scorer_entry_is_checked_when_the_configuration_is_read(change, message):
    """The default configuration's combined scorer: after its parts, identity post-processing, the parts it names."""
    raw = json.loads((CONFIGS[0].parent / "default_t1.json").read_text())
    assert TrainConfig.from_dict(raw).default_scorer == "gaussian4mm_atlas"  # as shipped
    change(raw)
    with pytest.raises(ValueError, match=message):
        TrainConfig.from_dict(raw)
