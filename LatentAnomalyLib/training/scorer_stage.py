"""The scorers stage of `latent-anomaly train`: encode the cached scans, fit and calibrate every scorer.

Latent scorers share one fitted :class:`LatentSpace`; baselines fit on the unmirrored training
scans; an encoder family's own score (``score.family``) first copies the family's arrays from
the trained encoder. Thresholds are calibrated on the healthy validation scans, post-processing
is chosen on synthetic lesions painted into them (``calibrate``).
"""

from __future__ import annotations

import json
import shutil
import time
from typing import Any

import numpy as np

from ..encode.encoding import encode, standardise_latent
from ..score.base import EncodedScan, latent_grid_mask, mirror_x
from ..score.family import FAMILY_SCORERS
from ..score.location import LatentSpace
from ..score.registry import COMBINED_SCORERS, LATENT_SCORERS, scorer_class

RESIDUAL_FIT_SCANS = 32
TRAIN_BATCH = 4  # scans encoded together (reconstructions one at a time): the batch sizes bundles were built with


def stage_scorers(run: Any, force: bool, progress: Any = None) -> None:
    """Encode the cached scans, fit every configured scorer, calibrate on validation scans (see ``TrainingRun``)."""
    from safetensors.numpy import save_file

    from .calibrate import build_synthetic_set, calibrate_scorer, choose_postprocess, synthetic_validation

    stamp = _stamp(run)
    stamp_path = run.path("scorers/stamp.json")
    if not force and stamp_path.exists() and stamp_path.read_text() == stamp and run.path("calibration.json").exists():
        run.log("scorers fitted with this encoder and configuration exist; skipping (use --force to refit)")
        return
    encoder = run.encoder().to(run.device)
    images, masks, ids = run.load_cache("train")
    val_images, val_masks, val_ids = run.load_cache("val")
    stride = run.config.encoder.stride
    t0 = time.time()
    train = encode(encoder, images, run.device, mirrored=True, batch_size=TRAIN_BATCH)
    latents, mirrored = train.latents, train.mirrored
    cells = np.stack([latent_grid_mask(m, stride) for m in masks])
    flat = np.moveaxis(latents, 1, -1)[cells]
    mean, std = flat.mean(axis=0), flat.std(axis=0) + 1e-6
    save_file(
        {"mean": mean.astype(np.float32), "std": std.astype(np.float32)}, str(run.path("latent_stats.safetensors"))
    )

    latents, mirrored = standardise_latent(latents, mean, std), standardise_latent(mirrored, mean, std)
    mirror = any(spec.params.get("mirror_average", False) for spec in run.config.scorers)
    val = encode(encoder, val_images, run.device, mirrored=mirror, stats=(mean, std), batch_size=TRAIN_BATCH)
    run.log(f"encoded train, mirrored train and validation scans in {time.time() - t0:.0f}s")
    needs_rec = False
    fit_scans = [EncodedScan(img, m, z, subject=sid) for img, m, z, sid in zip(images, masks, latents, ids)]
    fit_scans += [
        EncodedScan(mirror_x(img), mirror_x(m), z, subject=sid) for img, m, z, sid in zip(images, masks, mirrored, ids)
    ]
    val_scans = [
        EncodedScan(img, m, z, subject=sid) for img, m, z, sid in zip(val_images, val_masks, val.latents, val_ids)
    ]
    if mirror:  # test-time mirroring: calibration must see the same two views detect averages
        for scan, z in zip(val_scans, val.mirrored):
            scan.mirrored_latent = z
    if any("reconstruction" in scorer_class(s.name).needs for s in run.config.scorers):
        # The residual baseline's per-voxel spread is estimated on the first RESIDUAL_FIT_SCANS
        # training scans: the decoder runs at full resolution, the slowest step on a CPU.
        n_fit = min(RESIDUAL_FIT_SCANS, len(images))
        for scans, part in ((fit_scans[:n_fit], images[:n_fit]), (val_scans, val_images)):
            out = encode(encoder, part, run.device, reconstruction=True)
            for scan, rec, filtered in zip(scans, out.reconstructions, out.filtered):
                scan.reconstruction, scan.filtered = rec, filtered
        needs_rec = True
    synthetic = build_synthetic_set(val_scans, encoder, mean, std, run.device, run.config.seed, needs_rec, mirror)
    scorer_dir = run.path("scorers")
    if scorer_dir.exists():
        shutil.rmtree(scorer_dir)
    scorer_dir.mkdir()
    calibration: dict[str, Any] = {
        "voxel_fpr": run.config.calibration.voxel_fpr,
        "subject_fpr": run.config.calibration.subject_fpr,
        "scorers": {},
    }
    fit_metrics = {}
    fitted: dict[str, Any] = {}  # name -> fitted scorer, for combined scorers (score/latent_atlas_sum.py)
    space = None
    if any(s.name in LATENT_SCORERS for s in run.config.scorers):
        t = time.time()
        space = LatentSpace(run.config.latent_space).fit(fit_scans)
        arrays, meta = space.state()
        save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(scorer_dir / "latent_space.safetensors"))
        (scorer_dir / "latent_space.json").write_text(json.dumps(meta, indent=1) + "\n")
        fit_metrics["latent_space"] = {"fit_seconds": round(time.time() - t, 1), "positions": len(space.positions)}
        run.log(f"latent space: {len(space.positions)} locations fitted in {time.time() - t:.0f}s")
    for spec in run.config.scorers:
        cls = scorer_class(spec.name)
        t = time.time()
        if spec.name in LATENT_SCORERS:
            scorer = cls(run.config.latent_space, standardise=spec.standardise, **spec.params)
            scorer.fit(fit_scans, space=space)
        elif spec.name in COMBINED_SCORERS:  # its parts come earlier in the configuration's list
            scorer = cls(**spec.params)
            scorer.bind(fitted, calibration)
        else:
            scorer = cls(**spec.params)
            if cls in FAMILY_SCORERS.values():
                scorer.attach(encoder, mean, std)  # ValueError when the encoder is of another family
            n_fit = RESIDUAL_FIT_SCANS if "reconstruction" in cls.needs else len(images)
            scorer.fit(fit_scans[: min(n_fit, len(images))])  # unmirrored training scans
        fit_seconds = time.time() - t
        fitted[spec.name] = scorer
        arrays, meta = scorer.state()
        if arrays:
            save_file(
                {k: np.ascontiguousarray(v) for k, v in arrays.items()},
                str(scorer_dir / f"{spec.name}.safetensors"),
            )
        (scorer_dir / f"{spec.name}.json").write_text(json.dumps(meta, indent=1) + "\n")
        post, search = choose_postprocess(scorer, synthetic, spec.postprocess, run.config.postprocess)
        calibration["scorers"][spec.name] = calibrate_scorer(scorer, val_scans, post, run.config.calibration)
        check = synthetic_validation(scorer, synthetic, post)
        fit_metrics[spec.name] = {
            "fit_seconds": round(fit_seconds, 1),
            "synthetic_validation": check,
            "postprocess_search": search,
            "postprocess": post.to_dict(),
        }
        if progress is not None:
            progress.case_done(spec.name, f"AUPRC {check['auprc']:.3f}")
        run.log(
            f"scorer {spec.name}: fit {fit_seconds:.0f}s, threshold {calibration['scorers'][spec.name]['voxel_threshold']:.3f}, "
            f"synthetic-lesion validation AUROC {check['auroc']:.3f} AUPRC {check['auprc']:.3f}"
        )
    run.path("calibration.json").write_text(json.dumps(calibration, indent=1) + "\n")
    stamp_path.write_text(stamp)
    run._update_metrics("scorers", fit_metrics)


def _stamp(run: Any) -> str:
    """What the fitted scorers depend on: the encoder's weights, the cached scans and the scorer settings."""
    from ..bundle.format import sha256

    resolved = run.config.resolved()
    keys = ("seed", "scorers", "default_scorer", "calibration", "latent_space", "postprocess")
    files = ("encoder.safetensors", "cache/train.npz", "cache/val.npz")
    return json.dumps({**{k: resolved[k] for k in keys}, **{f: sha256(run.path(f)) for f in files}}, sort_keys=True)
