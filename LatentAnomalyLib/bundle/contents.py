"""A verified bundle's JSON contents in format 2, whichever format it was written in; no torch here.

:func:`read` returns ``config.json`` and every scorer's file (see :mod:`.migrate` for both formats);
a format-1 bundle is upgraded in memory and its files stay as they are. :func:`add_to` writes the
format-2 files into a :class:`.format.BundleWriter`. :func:`min_component_ml` is the torch-free way
for the Slicer module and the review server to get a scorer's smallest kept region.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..score.conformal import rule_problem
from ..score.postprocess_config import PostprocessError, PostprocessOverrides
from .format import Bundle, BundleError, BundleWriter, default_model_path
from .migrate import upgrade

CONFIG = "config.json"
CALIBRATION_V1 = "calibration.json"
DEFAULT_MIN_COMPONENT_ML = 0.1  # detect's rule when a scorer's calibration does not say


@dataclass
class Contents:
    """``config.json`` and each scorer's file (keyed by scorer name), in format 2."""

    config: dict[str, Any]
    scorers: dict[str, dict[str, Any]]

    def calibration(self, scorer: str) -> dict[str, Any]:
        """The scorer's calibration (thresholds, minimum component size, subject threshold, conformal entry)."""
        return self.scorers[scorer].get("calibration", {})


def _scorer_files(bundle: Bundle, config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    scorers = config.get("scorers")
    if not isinstance(scorers, dict) or not all(isinstance(f, dict) and "meta" in f for f in scorers.values()):
        raise BundleError(f"{bundle.folder}: {CONFIG} 'scorers' must map scorer names to their files")
    docs = {name: bundle.json(files["meta"]) for name, files in scorers.items()}
    bad = [name for name, doc in docs.items() if not isinstance(doc, dict)]
    if bad:
        raise BundleError(f"{bundle.folder}: scorer file(s) of {', '.join(bad)} are not JSON objects")
    return docs


def _checked(bundle: Bundle, contents: Contents) -> Contents:
    """Refuse scorer files without what detection reads (post-processing, voxel and subject thresholds) and
    post-processing sections with options this library does not know."""
    for name, doc in contents.scorers.items():
        calibration = doc.get("calibration")
        if (
            not isinstance(doc.get("postprocess"), dict)
            or not isinstance(calibration, dict)
            or not isinstance(calibration.get("voxel_threshold"), (int, float))
            or not isinstance(calibration.get("subject"), dict)
        ):
            raise BundleError(
                f"{bundle.folder}: scorer {name!r} has no calibration (postprocess, voxel_threshold, subject) in its file"
            )
        try:
            PostprocessOverrides.from_dict(doc["postprocess"], f"scorer {name!r} postprocess")
        except PostprocessError as error:
            raise BundleError(f"{bundle.folder}: {error}") from None
        conformal = calibration.get("conformal")
        if conformal:
            problem = rule_problem(conformal)
            if problem:
                raise BundleError(f"{bundle.folder}: scorer {name!r} conformal calibration: {problem}")
    return contents


def read(bundle: Bundle) -> Contents:
    """The bundle's configuration and scorer files in format 2 (a format-1 bundle upgraded in memory)."""
    config = bundle.json(CONFIG)
    if not isinstance(config, dict):
        raise BundleError(f"{bundle.folder}: {CONFIG} is not a JSON object")
    docs = _scorer_files(bundle, config)
    if bundle.manifest["format_version"] >= 2:
        return _checked(bundle, Contents(config, docs))
    calibration = bundle.json(CALIBRATION_V1)
    if not isinstance(calibration, dict) or not isinstance(calibration.get("scorers"), dict):
        raise BundleError(f"{bundle.folder}: {CALIBRATION_V1} has no 'scorers' object")
    try:
        config, docs = upgrade(config, calibration, docs)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise BundleError(f"{bundle.folder}: format-1 bundle cannot be upgraded ({type(error).__name__}: {error})") from None
    return _checked(bundle, Contents(config, docs))


def add_to(writer: BundleWriter, contents: Contents) -> None:
    """Write ``config.json`` and every scorer file (at the paths ``config.json`` names) into ``writer``."""
    writer.add_json(CONFIG, contents.config)
    for name, files in contents.config["scorers"].items():
        writer.add_json(files["meta"], contents.scorers[name])


def rewrite(
    bundle: Bundle,
    contents: Contents,
    out: str | os.PathLike[str],
    version: str,
    json_files: dict[str, Any] | None = None,
    arrays: dict[str, dict[str, Any]] | None = None,
) -> Path:
    """A format-2 bundle at ``out`` (may be ``bundle``'s own folder: written aside, then swapped in): ``contents``
    as its JSON, ``json_files`` and ``arrays`` added or replacing files, every other file of ``bundle`` copied
    byte for byte (``calibration.json`` of a format-1 bundle dropped), and a new manifest."""
    json_files, arrays = dict(json_files or {}), dict(arrays or {})
    written = {CONFIG, CALIBRATION_V1, *json_files, *arrays}
    written |= {files["meta"] for files in contents.config["scorers"].values()}
    writer = BundleWriter(out)
    try:
        for name in bundle.manifest["files"]:
            if name not in written:
                writer.add_file(name, bundle.path(name))
        add_to(writer, contents)
        for name, data in json_files.items():
            writer.add_json(name, data)
        for name, tensors in arrays.items():
            writer.add_arrays(name, tensors)
        return writer.finish(bundle.manifest["model_name"], version)
    except BaseException:
        writer.abort()
        raise


@lru_cache(maxsize=8)
def _min_component_ml(folder: str, stamp: float, scorer: str, model_name: str | None) -> float:
    bundle = Bundle.load(folder)
    if model_name is not None and bundle.manifest["model_name"] != model_name:
        return DEFAULT_MIN_COMPONENT_ML
    return float(read(bundle).calibration(scorer).get("min_component_ml", DEFAULT_MIN_COMPONENT_ML))


def min_component_ml(
    model_dir: str | os.PathLike[str] | None, scorer: str | None, model_name: str | None = None
) -> float:
    """The smallest region (mL) the bundle's calibration keeps for ``scorer`` (default bundle when ``model_dir`` is
    None), read through the verified manifest in either format; detect's 0.1 mL when the bundle is unusable, does
    not hold ``scorer``, or (with ``model_name``) is another model."""
    if not scorer:
        return DEFAULT_MIN_COMPONENT_ML
    folder = Path(model_dir) if model_dir is not None else default_model_path()
    try:
        stamp = (folder / "manifest.json").stat().st_mtime
        return _min_component_ml(str(folder.resolve()), stamp, scorer, model_name)
    except (OSError, BundleError, KeyError, TypeError, ValueError, AttributeError):
        return DEFAULT_MIN_COMPONENT_ML
