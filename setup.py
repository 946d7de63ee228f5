"""Build step that puts the default model inside the wheel; all metadata lives in pyproject.toml.

The repository keeps the model in ``models/latent-anomaly-t1`` (the Slicer extension ships it from
there). A wheel has no such folder, so ``build_py`` copies the bundle to
``LatentAnomalyLib/models/latent-anomaly-t1`` in the build tree, where
``LatentAnomalyLib.bundle.format.default_model_path`` finds it once installed. Editable installs skip the
copy and use the repository's folder directly. The bundle's manifest (SHA256 of every file) is
checked whenever the model is loaded, so a damaged copy is refused.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

MODEL = "latent-anomaly-t1"


class BuildPyWithModel(build_py):
    """``build_py`` that also copies the default model bundle into the package."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        source = Path(__file__).resolve().parent / "models" / MODEL
        if not (source / "manifest.json").is_file():
            raise SystemExit(f"{source}: the default model bundle is missing; cannot build a wheel without it")
        target = Path(self.build_lib) / "LatentAnomalyLib" / "models" / MODEL
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(source, target, ignore=shutil.ignore_patterns(".*"))


setup(cmdclass={"build_py": BuildPyWithModel})
