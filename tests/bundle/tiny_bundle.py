"""A bundle of JSON only (no weights), in format 1 or 2, for the readers that need only a scorer's calibration."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from LatentAnomalyLib.bundle.format import FORMAT, MANIFEST, sha256


def write_tiny_bundle(folder: Path, calibration: dict[str, dict[str, Any]], name: str = "m", fmt: int = 2) -> Path:
    """``folder`` as a bundle named ``name`` whose scorers have the given calibration entries (format ``fmt``; voxel
    and subject thresholds of 1.0 where not given); its manifest lists every file's SHA256 as a real bundle's does."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "scorers").mkdir(exist_ok=True)
    files = {"config.json": {"name": name, "scorers": {s: {"meta": f"scorers/{s}.json"} for s in calibration}}}
    full = {s: {"voxel_threshold": 1.0, "subject": {"threshold": 1.0}, **e} for s, e in calibration.items()}
    for scorer, entry in full.items():
        files[f"scorers/{scorer}.json"] = {"scorer": scorer, "params": {}}
        if fmt == 2:
            files[f"scorers/{scorer}.json"].update(postprocess={}, calibration=entry)
    if fmt == 1:
        files["calibration.json"] = {"voxel_fpr": 0.01, "scorers": {s: {**e, "postprocess": {}} for s, e in full.items()}}
    for file, data in files.items():
        (folder / file).write_text(json.dumps(data))
    manifest = {
        "format": FORMAT,
        "format_version": fmt,
        "library_version": "test",
        "model_name": name,
        "model_version": "0",
        "created": "2026-12-02T00:00:00+00:00",
        "files": {file: sha256(folder / file) for file in files},
    }
    (folder / MANIFEST).write_text(json.dumps(manifest))
    return folder
