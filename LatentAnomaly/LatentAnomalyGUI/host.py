"""Where the module runs: inside Slicer (its app, scene, logic base class, Qt runner) or in plain Python.

Nothing here imports ``slicer``: it only looks at ``sys.modules`` to tell whether Slicer is already loaded, so the
same logic runs in Slicer's GUI, in ``PythonSlicer``, and in plain Python with ``slicer-core`` or without Slicer.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

from .runner import ProcessRunner, SubprocessRunner

LIBRARY_PACKAGE = "LatentAnomalyLib"
DEFAULT_MODEL_NAME = "latent-anomaly-t1"


def slicer_app() -> Any:
    """Slicer's application object if this runs inside Slicer, else None (never imports slicer)."""
    slicer = sys.modules.get("slicer")
    return getattr(slicer, "app", None) if slicer is not None else None


def logic_base() -> type:
    if "slicer" in sys.modules:
        try:
            from slicer.ScriptedLoadableModule import ScriptedLoadableModuleLogic

            return ScriptedLoadableModuleLogic
        except ImportError:
            pass

    class StandaloneLogic:
        """Stand-in for ``ScriptedLoadableModuleLogic`` outside Slicer (pytest, scripts)."""

        def __init__(self, parent: Any = None) -> None:
            self.moduleName = "LatentAnomaly"

    return StandaloneLogic


def default_runner() -> ProcessRunner:
    """QProcess in Slicer (callbacks on the GUI thread, where MRML may be touched), subprocess elsewhere."""
    if slicer_app() is not None:
        from .qt_runner import QtProcessRunner

        return QtProcessRunner()
    return SubprocessRunner()


def slicer_scene() -> tuple[Any, Any]:
    """(``slicer.mrmlScene``, the application logic) inside Slicer, (None, None) elsewhere."""
    slicer = sys.modules.get("slicer")
    app = slicer_app()
    return getattr(slicer, "mrmlScene", None), app.applicationLogic() if app is not None else None


def library_root() -> Path | None:
    """The folder holding the ``LatentAnomalyLib`` package.

    Installed: the module folder (CMake copies the package beside ``LatentAnomaly.py``);
    source tree: the repository root; else wherever Python finds it (pip install).
    """
    here = Path(__file__).resolve().parent
    for candidate in (here.parent, here.parent.parent):
        if (candidate / LIBRARY_PACKAGE / "__init__.py").is_file():
            return candidate
    spec = importlib.util.find_spec(LIBRARY_PACKAGE)
    return Path(spec.origin).resolve().parent.parent if spec is not None and spec.origin else None


def default_model_path() -> Path | None:
    """``models/latent-anomaly-t1`` next to the library (where the library itself looks for it)."""
    root = library_root()
    candidate = root / "models" / DEFAULT_MODEL_NAME if root is not None else None
    return candidate if candidate is not None and candidate.is_dir() else None
