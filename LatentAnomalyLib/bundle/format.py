"""Model bundles: a folder of data files (safetensors, JSON, NIfTI) and a SHA256 manifest.

A bundle never holds code or pickles: loading one cannot execute anything. ``manifest.json``
lists every file with its SHA256 and the bundle's ``format_version`` (format 1 is still read, see
:mod:`.migrate`); :meth:`Bundle.load` refuses a bundle whose files are missing,
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
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from .. import __version__
from ..errors import InputError, LatentAnomalyError

FORMAT = "latent-anomaly-bundle"
FORMAT_VERSION = 2  # 2: each scorer's settings and calibration in scorers/<name>.json (see migrate.py)
MANIFEST = "manifest.json"
DEFAULT_MODEL_NAME = "latent-anomaly-t1"
PACKAGED_MODELS = Path(__file__).resolve().parents[1] / "models"  # in an installed wheel (copied by setup.py)
REPO_MODELS = Path(__file__).resolve().parents[2] / "models"  # in a source checkout or an editable install


def default_model_path() -> Path:
    """The default model: ``LATENT_ANOMALY_MODEL`` if set, else the copy an installed wheel carries, else the
    repository's ``models/`` folder. Whichever it is, :meth:`Bundle.load` verifies every file's SHA256."""
    if "LATENT_ANOMALY_MODEL" in os.environ:
        return Path(os.environ["LATENT_ANOMALY_MODEL"])
    packaged = PACKAGED_MODELS / DEFAULT_MODEL_NAME
    return packaged if (packaged / MANIFEST).is_file() else REPO_MODELS / DEFAULT_MODEL_NAME


class BundleError(LatentAnomalyError):
    """The bundle cannot be used (missing, corrupted, modified, from a newer format, or not fitting this library)."""


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


def _read_json(path: Path, what: str) -> Any:
    """Parse a bundle JSON file; any malformation (syntax, 200k-deep nesting, bad bytes) is a ``BundleError``."""
    from ..io.text_files import MAX_JSON_BYTES, read_text_limited

    try:
        return json.loads(read_text_limited(path, MAX_JSON_BYTES, what))
    except InputError as error:
        raise BundleError(str(error)) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise BundleError(f"{path}: unreadable {what} ({getattr(error, 'msg', error)})") from None
    except RecursionError:
        raise BundleError(f"{path}: unreadable {what} (nested too deeply)") from None


def _check_name(folder: Path, name: Any) -> str:
    """A manifest entry must be a relative path inside the bundle: no ``..``, no absolute path, no escape by link."""
    if not isinstance(name, str) or not name or "\\" in name or "\0" in name:
        raise BundleError(f"{folder}: manifest entry {name!r} is not a file name inside the bundle")
    parts = PurePosixPath(name).parts
    if PurePosixPath(name).is_absolute() or ".." in parts or name.startswith("~"):
        raise BundleError(f"{folder}: manifest entry {name!r} points outside the bundle; the bundle is not trusted")
    root = folder.resolve()
    if root not in (folder / name).resolve().parents:
        raise BundleError(f"{folder}: manifest entry {name!r} resolves outside the bundle (a link?)")
    return name


def check_manifest(folder: Path, manifest: Any) -> dict[str, Any]:
    """Refuse a manifest of the wrong shape or version, or naming files outside the bundle, before any file is read."""
    if not isinstance(manifest, dict):
        raise BundleError(f"{folder}: {MANIFEST} is not a JSON object ({type(manifest).__name__})")
    if manifest.get("format") != FORMAT:
        raise BundleError(f"{folder}: not a {FORMAT} (format {manifest.get('format')!r})")
    version = manifest.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise BundleError(f"{folder}: format_version {version!r} in {MANIFEST} is not an integer; the bundle is damaged")
    if version > FORMAT_VERSION:
        raise BundleError(
            f"{folder}: bundle format {version} is newer than this library reads ({FORMAT_VERSION}); upgrade latent-anomaly"
        )
    files = manifest.get("files")
    if not isinstance(files, dict) or not all(
        isinstance(v, str) and len(v) == 64 and all(c in "0123456789abcdef" for c in v) for v in files.values()
    ):
        raise BundleError(f"{folder}: {MANIFEST} 'files' must map file names to SHA256 hex digests")
    for name in files:
        _check_name(folder, name)
    for key in ("model_name", "model_version"):
        if not isinstance(manifest.get(key), str):
            raise BundleError(f"{folder}: {MANIFEST} has no {key}")
    return manifest


class Bundle:
    """A verified bundle on disk; accessors read only files the manifest lists (and verified)."""

    def __init__(self, folder: Path, manifest: dict[str, Any]):
        self.folder = folder
        self.manifest = manifest

    @classmethod
    def load(cls, folder: str | os.PathLike[str], verify: bool = True) -> Bundle:
        folder = Path(folder)
        manifest_path = folder / MANIFEST
        if not manifest_path.is_file():
            from ..io.path_checks import path_problem

            problem = path_problem(folder) or path_problem(manifest_path)
            raise BundleError(f"{folder}: {problem}" if problem else f"{folder}: not a model bundle (no {MANIFEST})")
        manifest = check_manifest(folder, _read_json(manifest_path, "manifest"))
        bundle = cls(folder, manifest)
        if verify:
            bundle.verify()
        return bundle

    def verify(self) -> None:
        for name, expected in self.manifest["files"].items():
            path = self.folder / _check_name(self.folder, name)
            if not path.is_file():
                raise BundleError(f"{self.folder}: file {name} listed in the manifest is missing")
            if sha256(path) != expected:
                raise BundleError(
                    f"{self.folder}: checksum mismatch for {name}; the bundle was modified or is corrupted"
                )

    def path(self, name: str) -> Path:
        """The path of a listed file; a name the manifest does not list is refused (never read unverified)."""
        if not isinstance(name, str) or name not in self.manifest["files"]:
            raise BundleError(f"{self.folder}: uses file {name!r}, which its manifest does not list")
        return self.folder / _check_name(self.folder, name)

    def has(self, name: str) -> bool:
        return name in self.manifest["files"]

    def json(self, name: str) -> Any:
        return _read_json(self.path(name), name)

    def arrays(self, name: str) -> dict[str, np.ndarray]:
        from safetensors.numpy import load_file

        return self._tensors(load_file, name)

    def state_dict(self, name: str) -> dict[str, Any]:
        from safetensors.torch import load_file

        return self._tensors(load_file, name)

    def _tensors(self, load: Any, name: str) -> dict[str, Any]:
        path = self.path(name)
        try:
            return load(str(path))
        except Exception as error:  # SafetensorError: bad header, sizes beyond the file, bad JSON
            raise BundleError(f"{path}: unreadable tensor file ({str(error).splitlines()[0]})") from None
