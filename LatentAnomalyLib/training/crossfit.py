"""Healthy calibration sets by cross-fitting over the IXI train and validation scans (never the test split).

    python -m LatentAnomalyLib.cli.calibrate crossfit [--model models/latent-anomaly-t1] [--cache DIR] [--work DIR]

Every train and validation scan is preprocessed and encoded once with the bundle's own Detector (cached,
see :mod:`.scan_cache`); the encoder and the latent standardisation stay the bundle's (not refitted). The
scans are split into ``k`` folds (seeded); for each fold the scorer's statistics (the latent space and the
scorer, exactly as ``latent-anomaly train`` fits them: the scans plus their mirrored copies) are fitted on the
other ``k - 1`` folds, and each held-out scan goes through ``Detector._finish`` with that scorer: the
bundle's post-processing, mapping to the scan's grid, voxel threshold and connected components. Per scan it
records the subject score candidates and every region (volume, peak, mean score) in ``records.json``; the
fitted fold scorers are kept in the work folder for the site-adaptation check.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..bundle.model import Model
from ..evaluation import datasets
from ..pipeline import DetectOptions, Detector
from ..score.atlas import AtlasScorer
from ..score.base import EncodedScan, mirror_x
from ..score.latent_atlas_sum import LatentAtlasSumScorer
from ..score.location import LatentSpace, LocationConfig
from ..score.registry import LATENT_SCORERS, scorer_class
from ..score.subject import MAP_STATISTICS, map_statistic
from .scan_cache import CachedScan, cached

SUBJECT_CANDIDATES = ("raw", "normalised", "shifted", "normalised_top01")


def subject_candidates(raw: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """Subject statistics of one raw score map: the map statistics of :mod:`..score.subject` (``raw``, model
    1.4.0; ``normalised`` and ``normalised_top01`` on the scan-standardised map) and ``shifted`` (raw minus the
    scan's median)."""
    values = raw[mask]
    median = float(np.median(values)) if values.size else 0.0
    out = {name: map_statistic(name, raw, mask) for name in MAP_STATISTICS}
    out["shifted"] = out["raw"] - median
    return {name: out[name] for name in SUBJECT_CANDIDATES}


def folds(ids: list[str], k: int, seed: int) -> dict[str, int]:
    """Each id's fold: a seeded permutation of the sorted ids cut into ``k`` near-equal parts."""
    order = np.random.default_rng(seed).permutation(sorted(ids))
    return {str(case): i % k for i, case in enumerate(order)}


def fit_scorer(model: Model, name: str, scans: list[EncodedScan]) -> Any:
    """The scorer ``name`` fitted on ``scans`` and their mirrored copies, with the bundle's settings."""
    meta = model.bundle.json(model.config["scorers"][name]["meta"])
    fit_scans = [*scans]
    fit_scans += [EncodedScan(mirror_x(s.image), mirror_x(s.mask), s.mirrored_latent, subject=s.subject) for s in scans]
    cls = scorer_class(meta["scorer"])
    if name not in LATENT_SCORERS:
        raise ValueError(f"cross-fitting supports latent scorers only, not {name!r}")
    config = LocationConfig(**meta["config"])
    space = LatentSpace(config).fit(fit_scans)
    scorer = cls(config, standardise=meta.get("standardise", True), **meta.get("params", {}))
    scorer.fit(fit_scans, space=space)
    return scorer


def fit_atlas(model: Model, name: str, scans: list[EncodedScan]) -> AtlasScorer:
    """The atlas ``name`` refitted on ``scans`` (unmirrored, as `latent-anomaly train` fits it)."""
    atlas = AtlasScorer(**model.bundle.json(model.config["scorers"][name]["meta"]).get("params", {}))
    atlas.fit(scans)
    return atlas


def bound_sum(model: Model, name: str, parts: dict[str, Any]) -> LatentAtlasSumScorer:
    """The combined scorer ``name`` with the bundle's settings, bound to the fold's ``parts``."""
    scorer = LatentAtlasSumScorer.from_state({}, model.bundle.json(model.config["scorers"][name]["meta"]))
    scorer.bind(parts, model.calibration)
    return scorer


def fit_named(model: Model, name: str, scans: list[EncodedScan]) -> Any:
    """The bundle's scorer ``name`` refitted on ``scans`` as a fold fits it: a latent scorer, or a combined one
    whose latent and atlas parts are both refitted."""
    if not isinstance(model.scorers[name], LatentAtlasSumScorer):
        return fit_scorer(model, name, scans)
    latent_name, atlas_name = model.scorers[name].part_names
    parts = {latent_name: fit_scorer(model, latent_name, scans), atlas_name: fit_atlas(model, atlas_name, scans)}
    return bound_sum(model, name, parts)


def held_out_record(model: Model, name: str, scorer: Any, scan: CachedScan) -> dict[str, Any]:
    """One held-out scan through the detection post-processing with the fold's scorer; no p-values used."""
    fold_model = dataclasses.replace(model, scorers={**model.scorers, name: scorer})
    detector = Detector(fold_model, DetectOptions(scorer=name, device="cpu", regions="all"))
    detector._sets[name] = None  # record the raw regions whatever calibration the bundle already holds
    result = detector._finish(scan.image, scan.pre, scan.encoded, name, {}, 0.0)
    raw = scorer.score(scan.encoded)
    return {
        "subject": subject_candidates(raw, scan.pre.mask),
        "regions": [{k: c[k] for k in ("volume_ml", "peak_score", "mean_score")} for c in result.summary["components"]],
        "brain_volume_ml": result.summary["brain_volume_ml"],
    }


def load_ixi(detector: Detector, cache: Path, part: str) -> list[CachedScan]:
    return [cached(detector, cache / f"ixi-{part}", c.case_id, c.images["t1"]) for c in datasets.ixi_cases(part)]


def save_scorer(scorer: Any, folder: Path) -> None:
    """A fold's scorer and its latent space as safetensors + JSON (work files, not a bundle)."""
    from safetensors.numpy import save_file

    folder.mkdir(parents=True, exist_ok=True)
    for stem, (arrays, meta) in (("scorer", scorer.state()), ("space", scorer.space.state())):
        save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(folder / f"{stem}.safetensors"))
        (folder / f"{stem}.json").write_text(json.dumps(meta, indent=1))


def load_scorer(folder: Path) -> Any:
    from safetensors.numpy import load_file

    space = LatentSpace.from_state(
        load_file(str(folder / "space.safetensors")), json.loads((folder / "space.json").read_text())
    )
    meta = json.loads((folder / "scorer.json").read_text())
    return scorer_class(meta["scorer"]).from_state(load_file(str(folder / "scorer.safetensors")), meta, space)


def save_atlas(atlas: AtlasScorer, folder: Path) -> None:
    """A fold's refitted atlas (combined scorers) as ``atlas.safetensors`` + ``atlas.json`` (work files)."""
    from safetensors.numpy import save_file

    arrays, meta = atlas.state()
    save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(folder / "atlas.safetensors"))
    (folder / "atlas.json").write_text(json.dumps(meta, indent=1))


def load_fold_scorer(model: Model, name: str, folder: Path) -> Any:
    """The fold's scorer for ``name`` as cross-fitting scored with it: the saved latent scorer, bound with the saved
    fold atlas when ``name`` is a combined scorer (for the validation studies in ``experiments/``)."""
    from safetensors.numpy import load_file

    scorer = load_scorer(folder)
    if not isinstance(model.scorers[name], LatentAtlasSumScorer):
        return scorer
    if not (folder / "atlas.json").is_file():
        raise ValueError(f"{folder} has no fold atlas: rerun the cross-fit of {name}")
    atlas = AtlasScorer.from_state(
        load_file(str(folder / "atlas.safetensors")), json.loads((folder / "atlas.json").read_text())
    )
    latent_name, atlas_name = model.scorers[name].part_names
    return bound_sum(model, name, {latent_name: scorer, atlas_name: atlas})


def run(model: Model, name: str, cache: Path, work: Path, k: int, seed: int, log: Any = print) -> dict[str, Any]:
    """Cross-fit ``name`` over the IXI train and validation scans; write and return ``records.json``."""
    detector = Detector(model, DetectOptions(device="cpu"))
    parts = {"train": load_ixi(detector, cache, "train"), "val": load_ixi(detector, cache, "val")}
    return crossfit_scans(model, name, [(part, s) for part, items in parts.items() for s in items], work, k, seed, log)


def crossfit_scans(
    model: Model, name: str, scans: list[tuple[str, CachedScan]], work: Path, k: int, seed: int, log: Any = print
) -> dict[str, Any]:
    """Cross-fit ``name`` over ``scans`` (part, scan); write and return ``records.json`` in ``work``."""
    fold = folds([s.case_id for _, s in scans], k, seed)
    records = []
    combined = isinstance(model.scorers[name], LatentAtlasSumScorer)
    latent_name, atlas_name = model.scorers[name].part_names if combined else (name, "")
    for f in range(k):
        t = time.time()
        folder = work / f"fold{f}"
        held_in = [s.encoded for _, s in scans if fold[s.case_id] != f]
        if (folder / "scorer.json").is_file():
            scorer = load_scorer(folder)
            if scorer.name != model.scorers[latent_name].name:  # e.g. fold folders copied from another run
                raise ValueError(f"{folder} holds a {scorer.name} fold scorer, not {model.scorers[latent_name].name}")
        else:
            scorer = fit_scorer(model, latent_name, held_in)
            save_scorer(scorer, folder)
        if combined:  # the atlas is refitted on the same folds (and kept); the latent part is the fold scorer above
            atlas = fit_atlas(model, atlas_name, held_in)
            save_atlas(atlas, folder)
            scorer = bound_sum(model, name, {latent_name: scorer, atlas_name: atlas})
        held = [(part, s) for part, s in scans if fold[s.case_id] == f]
        for part, scan in held:
            records.append(
                {"case_id": scan.case_id, "part": part, "fold": f, **held_out_record(model, name, scorer, scan)}
            )
        log(f"fold {f + 1}/{k}: {len(held)} held-out scans in {time.time() - t:.0f}s")
    out = {
        "model": f"{model.name} {model.version}",
        "scorer": name,
        "folds": k,
        "seed": seed,
        "voxel_threshold": float(model.calibration["scorers"][name]["voxel_threshold"]),
        "records": records,
    }
    work.mkdir(parents=True, exist_ok=True)
    (work / "records.json").write_text(json.dumps(out, indent=1))
    return out
