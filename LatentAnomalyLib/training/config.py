"""The training configuration file (JSON), parsed into one typed tree: :class:`TrainConfig` and the frozen
dataclasses of each stage under it.

The seed is written once, as the top-level ``seed`` (default :data:`LatentAnomalyLib.DEFAULT_SEED`), and handed
down to every stage that draws random numbers: registration sampling, brain-mask and encoder training, the
latent space's subsample and synthetic-lesion calibration. A stage section may repeat it (bundles and older
files do) but a different value is refused.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .. import DEFAULT_SEED
from ..bundle.configs import PreprocessConfig, preprocess_config_from_json
from ..bundle.configs import tuples as _tuples
from ..encode.families import EncoderConfig
from ..score.family import FAMILY_SCORERS
from ..score.latent_atlas_sum import IDENTITY_POSTPROCESS
from ..score.location import LocationConfig
from ..score.postprocess_config import PostprocessOverrides
from ..score.registry import COMBINED_SCORERS
from .augment import AugmentConfig
from .brainmask_trainer import BrainMaskTrainConfig
from .encoder_trainer import EncoderTrainConfig

STAGES = ("brainmask", "preprocess", "outliers", "encoder", "scorers", "bundle", "calibration")
SEEDED_SECTIONS = (("preprocess", "registration"), ("brainmask_train",), ("encoder_train",), ("latent_space",), ("conformal",))


def configured_seed(raw: dict[str, Any]) -> int:
    """The configuration's one seed; ``ValueError`` when a stage section sets another."""
    seed = int(raw.get("seed", DEFAULT_SEED))
    for path in SEEDED_SECTIONS:
        section: Any = raw
        for key in path:
            section = section.get(key, {}) if isinstance(section, dict) else {}
        if isinstance(section, dict) and "seed" in section and int(section["seed"]) != seed:
            raise ValueError(
                f"{'.'.join(path)}.seed is {section['seed']} but the configuration's seed is {seed}: "
                "set the seed once, at the top of the file"
            )
    return seed


@dataclass(frozen=True)
class ScorerSpec:
    """One entry of ``scorers``: its name, parameters and own post-processing (which skips the search)."""

    name: str
    params: dict[str, Any] = field(default_factory=dict)
    standardise: bool = True
    postprocess: PostprocessOverrides = field(default_factory=PostprocessOverrides)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ScorerSpec:
        """A ``scorers`` entry of the configuration file (its ``postprocess`` checked option by option)."""
        if not isinstance(raw, dict):
            raise ValueError(f"each entry of scorers must be a JSON object with a name, got {raw!r}")
        where = f"scorer {raw.get('name')!r} postprocess"
        return cls(**{**raw, "postprocess": PostprocessOverrides.from_dict(raw.get("postprocess"), where)})

    def resolved(self) -> dict[str, Any]:
        """The entry as stored in the bundle: ``postprocess`` holds only the options the file set."""
        return {**asdict(self), "postprocess": self.postprocess.to_dict()}


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
    latent_space: LocationConfig
    postprocess: PostprocessOverrides
    seed: int
    raw: dict[str, Any]

    @classmethod
    def from_file(cls, path: str | Path) -> TrainConfig:
        raw = json.loads(Path(path).read_text())
        return cls.from_dict(raw)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> TrainConfig:
        seed = configured_seed(raw)
        pre_defaults = asdict(PreprocessConfig())
        pre = {
            k: {**pre_defaults[k], **raw.get("preprocess", {}).get(k, {})}
            if isinstance(pre_defaults[k], dict)
            else raw.get("preprocess", {}).get(k, pre_defaults[k])
            for k in pre_defaults
        }
        pre["registration"] = {**pre["registration"], "seed": seed}
        enc_train = {**raw.get("encoder_train", {}), "seed": seed}
        augment = AugmentConfig(**_tuples(enc_train.pop("augment", {})))
        scorers = tuple(ScorerSpec.from_dict(s) for s in raw["scorers"])
        family = raw.get("encoder", {}).get("family", EncoderConfig.family)
        for spec in scorers:
            own = FAMILY_SCORERS.get(family)
            if spec.name in {c.name for c in FAMILY_SCORERS.values()} and (own is None or own.name != spec.name):
                raise ValueError(f"scorer {spec.name!r} is not the score of encoder family {family!r}")
        names = [s.name for s in scorers]
        for spec in scorers:
            if spec.name in COMBINED_SCORERS and spec.postprocess.to_dict() != IDENTITY_POSTPROCESS:
                raise ValueError(f"scorer {spec.name}: its postprocess must be {IDENTITY_POSTPROCESS} (the parts filter)")
            parts = [spec.params.get("latent", "gaussian4mm"), spec.params.get("atlas", "atlas")]
            if spec.name in COMBINED_SCORERS and parts != ["gaussian4mm", "atlas"]:
                raise ValueError(f"scorer {spec.name} sums the scorers gaussian4mm and atlas, not {', '.join(parts)}")
            if spec.name in COMBINED_SCORERS and not set(parts) <= set(names[: names.index(spec.name)]):
                raise ValueError(f"scorer {spec.name} must come after the scorers it sums ({', '.join(parts)})")
        default = raw.get("default_scorer", scorers[0].name)
        encoder = EncoderConfig(**_tuples(raw.get("encoder", {})))
        if default not in {s.name for s in scorers}:
            raise ValueError(f"default_scorer {default!r} is not among the configured scorers")
        return cls(
            name=raw["name"],
            version=raw["version"],
            description=raw.get("description", ""),
            split=raw.get("split", "splits/ixi_t1_split.json"),
            preprocess=preprocess_config_from_json(pre),
            brainmask_train=BrainMaskTrainConfig(**{**raw.get("brainmask_train", {}), "seed": seed}),
            encoder=encoder,
            encoder_train=EncoderTrainConfig(**enc_train, augment=augment),
            scorers=scorers,
            default_scorer=default,
            calibration=CalibrationConfig(**raw.get("calibration", {})),
            latent_space=LocationConfig(**{"stride": encoder.stride, **raw.get("latent_space", {}), "seed": seed}),
            postprocess=PostprocessOverrides.from_dict(raw.get("postprocess")),
            seed=seed,
            raw=raw,
        )

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
            "scorers": [s.resolved() for s in self.scorers],
            "default_scorer": self.default_scorer,
            "calibration": asdict(self.calibration),
            "latent_space": asdict(self.latent_space),
            "postprocess": self.postprocess.to_dict(),
        }
