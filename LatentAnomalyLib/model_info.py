"""`latent-anomaly info`: what a bundle holds, how it was trained and calibrated, and whether it is intact."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .bundle import Bundle, default_model_path


def describe(path: str | Path | None = None) -> dict[str, Any]:
    bundle = Bundle.load(path or default_model_path())  # verifies every checksum
    config = bundle.json("config.json")
    calibration = bundle.json("calibration.json")
    metrics = bundle.json("metrics.json") if bundle.has("metrics.json") else {}
    size_mb = sum((bundle.folder / f).stat().st_size for f in bundle.manifest["files"]) / 1e6
    info: dict[str, Any] = {
        "path": str(bundle.folder),
        "name": bundle.manifest["model_name"],
        "version": bundle.manifest["model_version"],
        "format_version": bundle.manifest["format_version"],
        "library_version": bundle.manifest["library_version"],
        "created": bundle.manifest["created"],
        "checksums": "verified",
        "size_mb": round(size_mb, 2),
        "modality": config.get("modality"),
        "encoder": config["encoder"],
        "scorers": list(config["scorers"]),
        "default_scorer": config["default_scorer"],
        "thresholds": {
            name: {
                "voxel": c["voxel_threshold"],
                "subject": c["subject"]["threshold"],
                "rule": c.get("voxel_threshold_rule", ""),
            }
            for name, c in calibration["scorers"].items()
        },
        "training_data": {k: v for k, v in config.get("training_data", {}).items() if not k.endswith("subjects")},
        "metrics": metrics,
    }
    lines = [
        f"{info['name']} {info['version']}  ({info['path']}, {info['size_mb']} MB, checksums verified)",
        f"  format {info['format_version']}, written by latent-anomaly {info['library_version']} on {info['created']}",
        f"  modality {info['modality']}; encoder {info['encoder']['family']} (latent {info['encoder']['latent_channels']} channels, stride {info['encoder']['stride']})",
        f"  trained on {info['training_data'].get('dataset', '?')} ({info['training_data'].get('split_file', '?')})",
        f"  scorers: {', '.join(info['scorers'])} (default {info['default_scorer']})",
    ]
    for name, t in info["thresholds"].items():
        lines.append(
            f"    {name}: voxel threshold {t['voxel']:.3f} ({t['rule']}); subject threshold {t['subject']:.3f}"
        )
    info["text"] = "\n".join(lines)
    return info
