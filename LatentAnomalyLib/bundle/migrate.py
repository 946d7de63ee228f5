"""Bundle format 1 -> format 2, on dicts only (no file is read or written here).

Format 1 (models up to 1.5.0) split a scorer over ``config.json`` (its files; the training block's
scorer specs, calibration settings and a second copy of ``preprocess`` and ``encoder``),
``scorers/<name>.json`` (class and fitted-state metadata) and ``calibration.json`` (thresholds,
post-processing, subject threshold; conformal entry). Format 2 keeps everything about a scorer in
``scorers/<name>.json``: its class metadata (``scorer``, ``config``, ``standardise``, ``params``),
``postprocess`` and ``calibration`` (``voxel_fpr``, ``subject_fpr``, ``voxel_threshold``,
``voxel_threshold_rule``, ``min_component_ml``, ``subject``, validation figures and, for a scorer with
calibration sets, ``conformal`` with the cross-fit ``settings``). ``config.json`` keeps the
model-level entries once; there is no ``calibration.json``.

:func:`upgrade` is the one conversion: :meth:`..bundle.model.Model.load` and
:func:`..bundle.contents.read` use it on format-1 bundles, the training run's bundle stage on its
work folder's (format-1 shaped) files.
"""

from __future__ import annotations

import copy
from typing import Any

SCORER_SECTIONS = ("postprocess", "calibration")
"""The keys a format-2 scorer file adds to the scorer's class metadata."""

MOVED_FROM_TRAINING = ("preprocess", "encoder", "scorers", "default_scorer", "calibration", "latent_space", "postprocess")
"""Training-block entries that format 2 stores once elsewhere: ``preprocess``, ``encoder`` and ``default_scorer``
at the top level; each scorer's parameters, post-processing and calibration settings in its own file."""


def upgrade(
    config: dict[str, Any], calibration: dict[str, Any], scorer_metas: dict[str, dict[str, Any]]
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """Format-2 ``config.json`` and scorer files (by scorer name) from the format-1 ``config.json``,
    ``calibration.json`` and scorer metadata files (by scorer name). The inputs are not modified.

    Every value detection reads is carried unchanged: class metadata, post-processing, thresholds,
    minimum component size, subject threshold and healthy scores, conformal entry.
    """
    config = copy.deepcopy(config)
    shared = {k: copy.deepcopy(v) for k, v in calibration.items() if k != "scorers"}
    entries = calibration.get("scorers", {})
    missing = sorted(set(config["scorers"]) - set(entries))
    if missing:
        raise ValueError(f"calibration.json has no entry for scorer(s) {', '.join(missing)}")
    settings = config.pop("conformal", None)
    scorers: dict[str, dict[str, Any]] = {}
    for name in config["scorers"]:
        entry = copy.deepcopy(entries[name])
        doc = {k: v for k, v in copy.deepcopy(scorer_metas[name]).items() if k not in SCORER_SECTIONS}
        doc["postprocess"] = entry.pop("postprocess", {})
        doc["calibration"] = {**shared, **entry}
        if settings is not None and "conformal" in entry:
            doc["calibration"]["conformal"]["settings"] = copy.deepcopy(settings)
        scorers[name] = doc
    if settings is not None and not any("settings" in d["calibration"].get("conformal", {}) for d in scorers.values()):
        config["conformal"] = settings  # settings without calibration sets: kept where they were
    training = config.get("training")
    if isinstance(training, dict):
        config["training"] = {k: v for k, v in training.items() if k not in MOVED_FROM_TRAINING}
    return config, scorers


def calibration_view(scorers: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The per-scorer calibration as one dict, ``{"scorers": {name: {**calibration, "postprocess": ...}}}``:
    the shape :attr:`..bundle.model.Model.calibration` offers (read by the pipeline and the conformal sets)."""
    return {
        "scorers": {
            name: {**copy.deepcopy(doc.get("calibration", {})), "postprocess": copy.deepcopy(doc.get("postprocess", {}))}
            for name, doc in scorers.items()
        }
    }


def scorer_state(doc: dict[str, Any]) -> dict[str, Any]:
    """A format-2 scorer file less its post-processing and calibration: what the scorer class's ``from_state`` reads."""
    return {k: v for k, v in doc.items() if k not in SCORER_SECTIONS}
