"""Make ``LatentAnomalyLib`` importable in Slicer's own Python, however the module was installed.

The module imports a few torch-free parts of the library in the GUI process (progress parsing,
re-thresholding, metrics). Installed as an extension, the package is copied next to ``LatentAnomaly.py``
(``LatentAnomaly/CMakeLists.txt``), a folder Slicer already puts on ``sys.path``. Loaded from a source
checkout (Extension Wizard, or "Additional module paths" = ``<repo>/LatentAnomaly``), the package sits one
folder up, in the repository root, which Slicer does not add: without this the module fails to load with
``No module named 'LatentAnomalyLib'``. A copy installed with pip wins; nothing is added then.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

PACKAGE = "LatentAnomalyLib"


def library_candidates(module_dir: str | os.PathLike[str]) -> list[Path]:
    """Folders that may hold the package: the module folder (installed) and its parent (source tree)."""
    here = Path(module_dir).resolve()
    return [here, here.parent]


def ensure_library_importable(module_dir: str | os.PathLike[str], path: list[str] | None = None) -> Path | None:
    """Put the folder holding ``LatentAnomalyLib`` on ``path`` (``sys.path``) if it is not importable yet.

    Returns the folder added, or None when nothing was needed or nothing was found (the import error
    that follows then names the missing package).
    """
    path = sys.path if path is None else path
    if path is sys.path and importlib.util.find_spec(PACKAGE) is not None:
        return None
    for folder in library_candidates(module_dir):
        if (folder / PACKAGE / "__init__.py").is_file():
            if str(folder) not in path:
                path.insert(0, str(folder))
                return folder
            return None
    return None
