"""A loaded model: a verified bundle turned into the objects the pipeline runs.

The bundle's ``config.json`` says how to preprocess, which encoder to build, which scorers it
holds and which one is the default; each scorer's file ``scorers/<name>.json`` holds its class
settings, post-processing and the thresholds fixed on healthy validation scans (a format-1 bundle,
with ``calibration.json``, is upgraded in memory by :mod:`.migrate`). Nothing is executed from the
bundle: classes are picked by name from the library's own registries and filled with arrays.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..encode.families import EncoderConfig, build_encoder
from ..preprocess.brainmask_net import build_net as build_brainmask_net
from ..preprocess.template import Template
from ..score.latent_atlas_sum import bind_sums
from ..score.location import LatentSpace
from ..score.location_normalised import bind_location_normalised
from ..score.registry import LATENT_SCORERS, scorer_class
from .configs import PreprocessConfig, preprocess_config_from_json
from .configs import tuples as _tuples
from .contents import read as read_contents
from .format import Bundle, BundleError, default_model_path
from .migrate import calibration_view, scorer_state

__all__ = ["Model"]


@dataclass
class Model:
    """Everything detection needs, loaded from one bundle.

    ``config`` is ``config.json`` in format 2; ``scorer_files`` each scorer's file (class settings,
    ``postprocess``, ``calibration``); ``calibration`` gathers the latter two as
    ``{"scorers": {name: {**calibration, "postprocess": ...}}}``, the view detection reads.
    """

    name: str
    version: str
    bundle: Bundle
    config: dict[str, Any]
    preprocess: PreprocessConfig
    template: Template
    brainmask_net: torch.nn.Module | None
    encoder: torch.nn.Module
    latent_mean: np.ndarray
    latent_std: np.ndarray
    scorers: dict[str, Any]
    calibration: dict[str, Any]
    metrics: dict[str, Any] = field(default_factory=dict)
    scorer_files: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def default_scorer(self) -> str:
        return str(self.config["default_scorer"])

    def decision_scorer(self, name: str) -> str | None:
        """The scorer whose map and calibration sets decide the scan when ``name``'s map is shown (config
        ``decision_scorers``, model 1.10.0), or ``None`` when ``name`` decides from its own map."""
        return self.config.get("decision_scorers", {}).get(name)

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None) -> Model:
        bundle = Bundle.load(path or default_model_path())
        try:
            return cls._from_bundle(bundle)
        except BundleError:
            raise
        except (
            KeyError,
            TypeError,
            ValueError,
            AttributeError,
            RuntimeError,
        ) as error:  # a config this library cannot use
            first = (str(error).strip().splitlines() or [""])[0]
            raise BundleError(
                f"{bundle.folder}: config or data files do not fit this library ({type(error).__name__}: {first})"
            ) from None

    @classmethod
    def _from_bundle(cls, bundle: Bundle) -> Model:
        contents = read_contents(bundle)
        config = contents.config
        pre = preprocess_config_from_json(config["preprocess"])
        template = Template.load(bundle, config["template_files"], pre.grid)
        brainmask_net = None
        if bundle.has("brainmask.safetensors"):
            brainmask_net = build_brainmask_net(pre.brainmask)
            brainmask_net.load_state_dict(bundle.state_dict("brainmask.safetensors"))
            brainmask_net.eval()
        encoder = build_encoder(EncoderConfig(**_tuples(config["encoder"])))
        weights = bundle.state_dict("encoder.safetensors")
        stats = bundle.arrays("latent_stats.safetensors")
        encoder.load_state_dict(weights)
        encoder.eval()
        space = None
        if config.get("latent_space"):
            files = config["latent_space"]
            space = LatentSpace.from_state(bundle.arrays(files["arrays"]), bundle.json(files["meta"]))
        scorers = {}
        for name, files in config["scorers"].items():
            meta = scorer_state(contents.scorers[name])
            arrays = bundle.arrays(files["arrays"]) if files.get("arrays") else {}
            scorer_type = scorer_class(meta["scorer"])
            if name in LATENT_SCORERS:
                scorers[name] = scorer_type.from_state(arrays, meta, space)
            else:
                scorers[name] = scorer_type.from_state(arrays, meta)
        calibration = calibration_view(contents.scorers)
        bind_sums(scorers, calibration)
        bind_location_normalised(scorers, calibration)
        if config["default_scorer"] not in scorers:
            raise BundleError(f"{bundle.folder}: default scorer {config['default_scorer']!r} is not in the bundle")
        for shown, decides in config.get("decision_scorers", {}).items():
            if shown not in scorers or decides not in scorers or shown == decides:
                raise BundleError(
                    f"{bundle.folder}: decision_scorers maps {shown!r} to {decides!r}: not two of its scorers"
                )
            sets = [bool(calibration["scorers"][n].get("conformal")) for n in (shown, decides)]
            if sets[0] and not sets[1]:  # else the shown scorer's sets would decide without a word
                raise BundleError(
                    f"{bundle.folder}: decision_scorers: {decides} decides for {shown} but has no calibration sets"
                )
        return cls(
            name=bundle.manifest["model_name"],
            version=bundle.manifest["model_version"],
            bundle=bundle,
            config=config,
            preprocess=pre,
            template=template,
            brainmask_net=brainmask_net,
            encoder=encoder,
            latent_mean=stats["mean"],
            latent_std=stats["std"],
            scorers=scorers,
            calibration=calibration,
            metrics=bundle.json("metrics.json") if bundle.has("metrics.json") else {},
            scorer_files=contents.scorers,
        )
