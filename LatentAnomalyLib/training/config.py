"""The training configuration file (JSON), parsed into the frozen dataclasses each stage uses."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..bundle.configs import PreprocessConfig, preprocess_config_from_json
from ..bundle.configs import tuples as _tuples
from ..encode.families import EncoderConfig
from ..score.family import FAMILY_SCORERS
from ..score.location import LocationConfig
from .augment import AugmentConfig
from .brainmask_trainer import BrainMaskTrainConfig
from .encoder_trainer import EncoderTrainConfig

STAGES = ("brainmask", "preprocess", "encoder", "scorers", "bundle")


@dataclass(frozen=True)
class ScorerSpec:
    name: str
    params: dict[str, Any] = field(default_factory=dict)
    standardise: bool = True
    postprocess: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CalibrationConfig:
    voxel_fpr: float = 0.01
    subject_fpr: float = 0.05
    min_component_ml: float = 0.1


@dataclass(frozen=True)
class TrainConfig:
    name: str
    version: str
    description: str
    split: str
    preprocess: PreprocessConfig
    brainmask_train: BrainMaskTrainConfig
    encoder: EncoderConfig
    encoder_train: EncoderTrainConfig
    scorers: tuple[ScorerSpec, ...]
    default_scorer: str
    calibration: CalibrationConfig
    latent_space: dict[str, Any]
    postprocess: dict[str, Any]
    seed: int
    raw: dict[str, Any]

    @classmethod
    def from_file(cls, path: str | Path) -> TrainConfig:
        raw = json.loads(Path(path).read_text())
        return cls.from_dict(raw)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> TrainConfig:
        pre_defaults = asdict(PreprocessConfig())
        pre = {
            k: {**pre_defaults[k], **raw.get("preprocess", {}).get(k, {})}
            if isinstance(pre_defaults[k], dict)
            else raw.get("preprocess", {}).get(k, pre_defaults[k])
            for k in pre_defaults
        }
        enc_train = dict(raw.get("encoder_train", {}))
        augment = AugmentConfig(**_tuples(enc_train.pop("augment", {})))
        scorers = tuple(ScorerSpec(**s) for s in raw["scorers"])
        family = raw.get("encoder", {}).get("family", EncoderConfig.family)
        for spec in scorers:
            own = FAMILY_SCORERS.get(family)
            if spec.name in {c.name for c in FAMILY_SCORERS.values()} and (own is None or own.name != spec.name):
                raise ValueError(f"scorer {spec.name!r} is not the score of encoder family {family!r}")
        default = raw.get("default_scorer", scorers[0].name)
        if default not in {s.name for s in scorers}:
            raise ValueError(f"default_scorer {default!r} is not among the configured scorers")
        return cls(
            name=raw["name"],
            version=raw["version"],
            description=raw.get("description", ""),
            split=raw.get("split", "splits/ixi_t1_split.json"),
            preprocess=preprocess_config_from_json(pre),
            brainmask_train=BrainMaskTrainConfig(**raw.get("brainmask_train", {})),
            encoder=EncoderConfig(**_tuples(raw.get("encoder", {}))),
            encoder_train=EncoderTrainConfig(**enc_train, augment=augment),
            scorers=scorers,
            default_scorer=default,
            calibration=CalibrationConfig(**raw.get("calibration", {})),
            latent_space=dict(raw.get("latent_space", {})),
            postprocess=dict(raw.get("postprocess", {})),
            seed=int(raw.get("seed", 20261123)),
            raw=raw,
        )

    def location_config(self) -> LocationConfig:
        return LocationConfig(**{"seed": self.seed, "stride": self.encoder.stride, **self.latent_space})

    def resolved(self) -> dict[str, Any]:
        """The full configuration with defaults filled in, as stored in the bundle."""
        return {
            "name": self.name,
            "version": self.version,
            "description": self.description,
            "split": self.split,
            "seed": self.seed,
            "preprocess": asdict(self.preprocess),
            "brainmask_train": asdict(self.brainmask_train),
            "encoder": asdict(self.encoder),
            "encoder_train": asdict(self.encoder_train),
            "scorers": [asdict(s) for s in self.scorers],
            "default_scorer": self.default_scorer,
            "calibration": asdict(self.calibration),
            "latent_space": asdict(self.location_config()),
            "postprocess": dict(self.postprocess),
        }
