"""Model bundles: a folder of data files (safetensors, JSON, NIfTI) and a SHA256 manifest.

A bundle never holds code or pickles: loading one cannot execute anything. ``manifest.json``
lists every file with its SHA256; :meth:`Bundle.load` refuses a bundle whose files are missing,
altered or unlisted-but-required, and one written by a newer format than this library reads.
Bundles are written into a temporary sibling folder and renamed into place when complete.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__

FORMAT = "latent-anomaly-bundle"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"


class BundleError(ValueError):
    """The bundle cannot be used (missing, corrupted, modified or from a newer format)."""


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class BundleWriter:
    """Collect files in a temporary folder; :meth:`finish` writes the manifest and moves it into place."""

    def __init__(self, destination: str | os.PathLike[str]):
        self.destination = Path(destination).resolve()
        self.destination.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.destination.name}.", dir=self.destination.parent))
        self.files: list[str] = []

    def _target(self, name: str) -> Path:
        path = self.tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        self.files.append(name)
        return path

    def add_json(self, name: str, data: Any) -> None:
        self._target(name).write_text(json.dumps(data, indent=2) + "\n")

    def add_arrays(self, name: str, arrays: dict[str, np.ndarray]) -> None:
        from safetensors.numpy import save_file

        save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(self._target(name)))

    def add_state_dict(self, name: str, state: dict[str, Any]) -> None:
        from safetensors.torch import save_file

        save_file({k: v.detach().cpu().contiguous() for k, v in state.items()}, str(self._target(name)))

    def add_file(self, name: str, source: str | os.PathLike[str]) -> None:
        shutil.copyfile(source, self._target(name))

    def target(self, name: str) -> Path:
        """A path inside the bundle for writers that need one (e.g. SimpleITK images)."""
        return self._target(name)

    def finish(self, name: str, version: str) -> Path:
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "library_version": __version__,
            "model_name": name,
            "model_version": version,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "files": {f: sha256(self.tmp / f) for f in sorted(self.files)},
        }
        (self.tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        if self.destination.exists():
            old = self.destination.with_name(f".{self.destination.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(self.destination, old)
            os.replace(self.tmp, self.destination)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(self.tmp, self.destination)
        return self.destination

    def abort(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


class Bundle:
    """A verified bundle on disk; accessors read its files by name."""

    def __init__(self, folder: Path, manifest: dict[str, Any]):
        self.folder = folder
        self.manifest = manifest

    @classmethod
    def load(cls, folder: str | os.PathLike[str], verify: bool = True) -> Bundle:
        folder = Path(folder)
        manifest_path = folder / MANIFEST
        if not manifest_path.is_file():
            raise BundleError(f"{folder}: not a model bundle (no {MANIFEST})")
        try:
            manifest = json.loads(manifest_path.read_text())
        except json.JSONDecodeError as error:
            raise BundleError(f"{manifest_path}: unreadable manifest ({error.msg})") from None
        if manifest.get("format") != FORMAT:
            raise BundleError(f"{folder}: not a {FORMAT} (format {manifest.get('format')!r})")
        if int(manifest.get("format_version", 0)) > FORMAT_VERSION:
            raise BundleError(
                f"{folder}: bundle format {manifest['format_version']} is newer than this library reads "
                f"({FORMAT_VERSION}); upgrade latent-anomaly"
            )
        bundle = cls(folder, manifest)
        if verify:
            bundle.verify()
        return bundle

    def verify(self) -> None:
        for name, expected in self.manifest["files"].items():
            path = self.folder / name
            if not path.is_file():
                raise BundleError(f"{self.folder}: file {name} listed in the manifest is missing")
            if sha256(path) != expected:
                raise BundleError(
                    f"{self.folder}: checksum mismatch for {name}; the bundle was modified or is corrupted"
                )

    def path(self, name: str) -> Path:
        if name not in self.manifest["files"]:
            raise BundleError(f"{self.folder}: has no file {name}")
        return self.folder / name

    def has(self, name: str) -> bool:
        return name in self.manifest["files"]

    def json(self, name: str) -> Any:
        return json.loads(self.path(name).read_text())

    def arrays(self, name: str) -> dict[str, np.ndarray]:
        from safetensors.numpy import load_file

        return load_file(str(self.path(name)))

    def state_dict(self, name: str) -> dict[str, Any]:
        from safetensors.torch import load_file

        return load_file(str(self.path(name)))
