"""Rewrite a bundle in the current format (format 1 -> 2; see :mod:`.migrate`).

Not needed to use an old bundle (``Model.load`` upgrades format 1 in memory); :func:`upgrade_bundle` writes the
upgraded files once. Weights, arrays and templates are copied byte for byte; a new manifest lists every file's
SHA256. Its command line is ``python -m LatentAnomalyLib.cli.upgrade`` (:mod:`LatentAnomalyLib.cli.upgrade`).
"""

from __future__ import annotations

import os
from pathlib import Path

from .contents import read, rewrite
from .format import Bundle


def upgrade_bundle(source: str | os.PathLike[str], out: str | os.PathLike[str], version: str | None = None) -> Path:
    """The bundle at ``source`` written in format 2 at ``out`` (may be ``source`` itself: written aside, then
    swapped in), as model ``version`` (default: unchanged); :class:`.format.BundleError` for an unusable bundle."""
    bundle = Bundle.load(source)
    contents = read(bundle)
    version = version or bundle.manifest["model_version"]
    contents.config["version"] = version
    return rewrite(bundle, contents, out, version)
