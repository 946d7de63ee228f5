"""The bundle stage of `latent-anomaly train`: the work folder's outputs -> a model bundle.

``config.json`` records the configuration with defaults filled in, the encoder family, the scans'
``sequence`` (top level; detect compares a scan's contrast with it) and what the model was trained
on (IXI split or own cohort, with its split and any scans removed as outliers). The work folder keeps
its format-1 shaped files (``calibration.json``, ``scorers/<name>.json``); they reach the bundle
through :func:`..bundle.migrate.upgrade`, so the bundle is format 2 (each scorer's settings and
calibration in its own file, ``preprocess`` once).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..bundle.contents import Contents, add_to
from ..bundle.format import BundleWriter
from ..bundle.migrate import upgrade


def training_data(run: Any) -> dict[str, Any]:
    """What the bundle records about its training scans (and their split)."""
    if run.source is not None:
        data = run.source.describe(run.workdir, run.config.seed)
        data["train_subjects"] = [c.case_id for c in run.cases("train")]
        data["validation_subjects"] = [c.case_id for c in run.cases("val")]
    else:
        data = {
            "dataset": "IXI T1 (healthy)",
            "split_file": run.config.split,
            "train_subjects": [c.case_id for c in run.cases("train")],
            "validation_subjects": [c.case_id for c in run.cases("val")],
        }
    from .latent_outliers import removed_ids

    removed = sorted(removed_ids(run.workdir)) + run.metrics().get("encoder", {}).get("removed_as_outliers", [])
    if removed:  # by the latent criterion before training, then by the loss criterion during it
        data["removed_as_outliers"] = removed
    return data


def write_bundle(run: Any, out: Path) -> Path:
    """Write the bundle from the work folder's stage outputs (atomically, with its SHA256 manifest)."""
    cfg = run.config
    writer = BundleWriter(out)
    try:
        template = run.template()
        import SimpleITK as sitk

        for name in ("t1", "gm", "wm"):
            target = str(writer.target(f"template_{name}.nii.gz"))
            sitk.WriteImage(template.as_image(name), target, useCompression=True)
        writer.add_file("brainmask.safetensors", run.path("brainmask.safetensors"))
        writer.add_file("encoder.safetensors", run.path("encoder.safetensors"))
        writer.add_file("latent_stats.safetensors", run.path("latent_stats.safetensors"))
        scorers, metas = {}, {}
        if run.path("scorers/latent_space.safetensors").exists():
            writer.add_file("scorers/latent_space.safetensors", run.path("scorers/latent_space.safetensors"))
            writer.add_file("scorers/latent_space.json", run.path("scorers/latent_space.json"))
        for spec in cfg.scorers:
            entry = {"meta": f"scorers/{spec.name}.json"}
            metas[spec.name] = json.loads(run.path(entry["meta"]).read_text())
            if run.path(f"scorers/{spec.name}.safetensors").exists():
                entry["arrays"] = f"scorers/{spec.name}.safetensors"
                writer.add_file(entry["arrays"], run.path(entry["arrays"]))
            scorers[spec.name] = entry
        resolved = cfg.resolved()
        config = {
            "name": cfg.name,
            "version": cfg.version,
            "description": cfg.description,
            "modality": run.sequence,
            "sequence": run.sequence,  # detect compares a scan's contrast with this
            "preprocess": resolved["preprocess"],
            "encoder": resolved["encoder"],
            "template_files": {k: f"template_{k}.nii.gz" for k in ("t1", "gm", "wm")},
            "scorers": scorers,
            "latent_space": {"arrays": "scorers/latent_space.safetensors", "meta": "scorers/latent_space.json"}
            if run.path("scorers/latent_space.safetensors").exists()
            else None,
            "default_scorer": cfg.default_scorer,
            "training": resolved,
            "training_data": run.training_data(),
            "template_attribution": "ICBM 2009a symmetric MNI152 (Fonov et al. 2011), McConnell Brain Imaging Centre",
        }
        calibration = json.loads(run.path("calibration.json").read_text())
        add_to(writer, Contents(*upgrade(config, calibration, metas)))
        writer.add_json("metrics.json", run.metrics())
        return writer.finish(cfg.name, cfg.version)
    except BaseException:
        writer.abort()
        raise
