"""Probe (validation only) of docs/map-design.md's candidate B: the map normalised by healthy maps at each place.

    nice -n 5 python experiments/location_norm_probe.py [--limit 20] [--skip-degraded]

Stages, each stored under runs/location_norm/ and reused when there:
1. ``maps.npz``: the shipped default map (model 1.9.0, ``gaussian4mm_atlas``) of each of the 118 IXI train and
   validation scans, cross-fitted exactly as the bundle's calibration was (5 folds, seed 20261123: the scorer
   and atlas refitted on the other folds), on the model grid.
2. For each variant and each fold, the location statistics (:func:`location_statistics`) of the other folds'
   maps; each scan's normalised map; the voxel threshold (99th percentile of the 20 validation scans' normalised
   brain voxels, as training sets it) and the calibration set (largest region peak, map statistic) of the 118.
3. Validation inputs through detection with the shipped map and each variant (IXI validation scans use the
   statistics of the folds without them): the first ``--limit`` IXI validation scans under every skull-stripping
   variant and with one second-generator lesion each (with skull), their degraded copies, and the 7 BraTS
   validation cases (flag, lesion-wise detection, and the tumour volume left outside the detector's brain mask).
   p-values: the ``combined`` rule against each map's calibration set, leaving out the scan's own record.

Variants (fixed before the first run): ``B``: mean and spread, both smoothed 4 mm, spread floored at half its
median; ``B_mean``: the smoothed mean only, divided by one spread (the median) for the whole brain. Candidate C
rides along: ``C`` is ``B`` plus 0.5 x the location-normalised hemispheric asymmetry (mean squared difference
between the latent of the scan and of its mirrored copy at each 8 mm cell, upsampled, median 3 and Gaussian
2 voxels, normalised by its own healthy statistics as ``B``, negative values clipped), counted only on the side
whose ``B`` map is the higher of the two mirror positions (so a lesion's mirror place does not light up).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from dataclasses import replace
from pathlib import Path

import benchmarks_on_path  # noqa: F401 (puts benchmarks/ on the path)
import numpy as np
import SimpleITK as sitk
import torch
from cache_scans import cache_folder, set_cases
from conformal_choices import SITE

from LatentAnomalyLib.bundle.model import Model
from LatentAnomalyLib.evaluation import datasets
from LatentAnomalyLib.evaluation.metrics import lesion_metrics
from LatentAnomalyLib.evaluation.realistic_lesions import REALISTIC_KINDS, paint_realistic
from LatentAnomalyLib.evaluation.skull_stripping import VARIANTS, stripped
from LatentAnomalyLib.pipeline import DetectOptions, Detector
from LatentAnomalyLib.score.asymmetry import asymmetry_map, one_sided, symmetric_support
from LatentAnomalyLib.score.components import label_components
from LatentAnomalyLib.score.conformal import p_value
from LatentAnomalyLib.score.latent_atlas_sum import IDENTITY_POSTPROCESS
from LatentAnomalyLib.score.location_normalised import LocationNormalisedScorer, location_statistics
from LatentAnomalyLib.score.subject import map_statistic
from LatentAnomalyLib.training.augment import degrade
from LatentAnomalyLib.training.crossfit import fit_named, folds, load_ixi
from LatentAnomalyLib.training.scan_cache import CachedScan

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "runs" / "location_norm"
BASE = "gaussian4mm_atlas"
SEED = 20261207
ASYMMETRY_OF = {"C": "B", "C_mean": "B_mean", "S_asym": "S", "C_mean_inner": "B_mean", "S_asym_inner": "S"}
INNER = {"C_mean_inner": 2, "S_asym_inner": 2}  # added after the first results: asymmetry only 4 mm inside both sides
MAPS = ("S", "B", "B_mean", *ASYMMETRY_OF)
ASYM_WEIGHT = 0.5
VARIANTS_B = {"B": {"sigma_vox": 2.0, "floor_fraction": 0.5, "mean_only": False},
              "B_mean": {"sigma_vox": 2.0, "floor_fraction": 0.5, "mean_only": True},
              "S": {"identity": True}}  # fmt: skip


def calibration_scans(model: Model) -> list[tuple[str, CachedScan]]:
    """The 118 IXI train and validation scans, preprocessed and encoded once (runs/scan_cache)."""
    detector = Detector(model, DetectOptions(device="cpu"))
    return [(part, s) for part in ("train", "val") for s in load_ixi(detector, cache_folder(model, "ixi").parent, part)]


def cross_fitted_maps(model: Model, scans: list[tuple[str, CachedScan]]) -> dict:
    """Stage 1: each calibration scan's default map from the fold scorer that did not see it."""
    target = OUT / "maps.npz"
    if target.is_file():
        data = np.load(target)
        return {k: data[k] for k in data.files}
    settings = model.calibration["scorers"][BASE]["conformal"]["settings"]
    fold = folds([s.case_id for _, s in scans], int(settings["folds"]), int(settings["seed"]))
    maps = np.zeros((len(scans), *scans[0][1].pre.mask.shape), np.float32)
    for f in range(int(settings["folds"])):
        scorer = fit_named(model, BASE, [s.encoded for _, s in scans if fold[s.case_id] != f])
        for i, (_, s) in enumerate(scans):
            if fold[s.case_id] == f:
                maps[i] = scorer.score(s.encoded)
        print(f"fold {f}: maps done", flush=True)
    out = {
        "maps": maps,
        "masks": np.stack([s.pre.mask for _, s in scans]),
        "case_ids": np.asarray([s.case_id for _, s in scans]),
        "parts": np.asarray([p for p, _ in scans]),
        "folds": np.asarray([fold[s.case_id] for _, s in scans]),
    }
    OUT.mkdir(parents=True, exist_ok=True)
    np.savez(target, **out)
    return out


def statistics_for(data: dict, variant: str, exclude_fold: int | None) -> tuple[np.ndarray, np.ndarray]:
    keep = data["folds"] != exclude_fold
    v = VARIANTS_B[variant]
    if v.get("identity"):  # the shipped map itself, calibrated here as the others (a check of this script)
        return np.zeros(data["maps"].shape[1:], np.float32), np.ones(data["maps"].shape[1:], np.float32)
    mean, spread = location_statistics(data["maps"][keep], data["masks"][keep], v["sigma_vox"], v["floor_fraction"], 20)
    if v["mean_only"]:
        spread = np.full_like(spread, float(np.median(spread[data["masks"][keep].mean(0) > 0.5])))
    return mean, spread


def calibrate(model: Model, data: dict, variant: str, scans: list[tuple[str, CachedScan]]) -> dict:
    """Stage 2 for one variant: voxel threshold and calibration set from the normalised cross-fitted maps."""
    stats = {
        f: statistics_for(data, ASYMMETRY_OF.get(variant, variant), f) for f in sorted(set(data["folds"].tolist()))
    }
    z = [np.where(m, (x - stats[f][0]) / stats[f][1], 0.0).astype(np.float32)
         for x, m, f in zip(data["maps"], data["masks"], data["folds"])]  # fmt: skip
    if variant in ASYMMETRY_OF:
        asym = [asymmetry_statistics(scans, data, f) for f in sorted(stats)]
        z = [
            with_asymmetry(zi, a, asym[f], m, INNER.get(variant, 0))
            for zi, a, f, m in zip(z, ASYM_CACHE["maps"], data["folds"], data["masks"])
        ]
    val = [zi[m] for zi, m, p in zip(z, data["masks"], data["parts"]) if p == "val"]
    vt = float(np.quantile(np.concatenate(val), 0.99))
    rows = []
    for zi, m, (_, scan) in zip(z, data["masks"], scans):
        heat = scan.pre.to_native(zi, model.preprocess.grid)
        regions = label_components(sitk.GetArrayFromImage(heat), vt, heat, 0.1)[1]
        peak = max((c["peak_score"] for c in regions), default=0.0)
        rows.append([float(peak), map_statistic("normalised", zi, m.astype(bool))])
    return {"voxel_threshold": vt, "case_ids": data["case_ids"].tolist(), "cal": rows}


def shipped_calibration(model: Model) -> dict:
    entry = model.calibration["scorers"][BASE]["conformal"]
    a = model.bundle.arrays(entry["arrays"])
    p = entry.get("prefix", BASE)
    cal = np.stack([a[f"{p}.region_max"], a[f"{p}.subject_scores"]], axis=1)
    return {"voxel_threshold": float(model.calibration["scorers"][BASE]["voxel_threshold"]),
            "case_ids": list(entry["case_ids"]), "cal": cal.tolist()}  # fmt: skip


def asymmetry_statistics(scans: list[tuple[str, CachedScan]], data: dict, exclude_fold: int | None):
    key = f"asym{exclude_fold}"
    if key not in ASYM_CACHE:
        if "maps" not in ASYM_CACHE:
            ASYM_CACHE["maps"] = [asymmetry_map(s.encoded) for _, s in scans]
        keep = [f != exclude_fold for f in data["folds"]]
        maps = [a for a, k in zip(ASYM_CACHE["maps"], keep) if k]
        ASYM_CACHE[key] = location_statistics(maps, data["masks"][keep], 2.0, 0.5, 20)
    return ASYM_CACHE[key]


ASYM_CACHE: dict = {}


def with_asymmetry(b_map: np.ndarray, asym: np.ndarray, stats, mask: np.ndarray, inner: int = 0) -> np.ndarray:
    """A normalised map plus the one-sided asymmetry, on stored maps (stage 2): the library scorer's formula."""
    z = np.where(symmetric_support(mask, inner), np.maximum((asym - stats[0]) / stats[1], 0.0), 0.0)
    return (b_map + np.float32(ASYM_WEIGHT) * one_sided(b_map, z)).astype(np.float32)


class LastMap:
    """The base scorer, remembering its map of the last scan, so the variants do not score each input again."""

    def __init__(self, scorer) -> None:
        self._scorer, self._last = scorer, (None, None)

    def __getattr__(self, name: str):
        return getattr(self._scorer, name)

    def score(self, scan):
        if self._last[0] is not scan:
            self._last = (scan, self._scorer.score(scan))
        return self._last[1]


def probed_model(model: Model, data: dict, calibrations: dict, scans: list[tuple[str, CachedScan]]) -> Model:
    """The bundle with one location-normalised scorer per variant and fold (and ``@all`` for other inputs)."""
    scorers, entries = dict(model.scorers), dict(model.calibration["scorers"])
    scorers[BASE] = LastMap(model.scorers[BASE])
    subject = model.calibration["scorers"][BASE]["subject"]  # read by the summary only, not by the probe
    entry = {"postprocess": IDENTITY_POSTPROCESS, "min_component_ml": 0.1, "subject": subject}
    for variant in VARIANTS_B:
        wanted = [k for k, v in ASYMMETRY_OF.items() if v == variant and k in calibrations]
        if variant not in calibrations and not wanted:
            continue
        for f in [*sorted(set(data["folds"].tolist())), None]:
            mean, spread = statistics_for(data, variant, f)
            suffix = f"@{'all' if f is None else f}"
            built = {variant: LocationNormalisedScorer(BASE, mean, spread)} if variant in calibrations else {}
            for added in wanted:  # the library scorer with the asymmetry; LastMap scores the base map once
                asym = asymmetry_statistics(scans, data, f)
                built[added] = LocationNormalisedScorer(
                    BASE, mean, spread, asymmetry=asym, asymmetry_weight=ASYM_WEIGHT,
                    asymmetry_inner_voxels=INNER.get(added, 0),
                )  # fmt: skip
            for label, scorer in built.items():
                scorer.bind(scorers, model.calibration)
                scorers[label + suffix] = scorer
                entries[label + suffix] = {**entry, "voxel_threshold": calibrations[label]["voxel_threshold"]}
    return dataclasses.replace(model, scorers=scorers, calibration={**model.calibration, "scorers": entries})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=20)
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--skip-degraded", action="store_true")
    parser.add_argument("--maps", default=",".join(MAPS), help="which maps to probe beside the shipped one")
    args = parser.parse_args()
    torch.set_num_threads(2)
    model = Model.load(None)
    scans = calibration_scans(model)
    data = cross_fitted_maps(model, scans)
    assert data["case_ids"].tolist() == [s.case_id for _, s in scans]
    calibrations = {"shipped": shipped_calibration(model)}
    maps = args.maps.split(",")
    for variant in maps:
        path = OUT / f"calibration-{variant}.json"
        if not path.is_file():
            path.write_text(json.dumps(calibrate(model, data, variant, scans)))
        calibrations[variant] = json.loads(path.read_text())
        print(variant, "voxel threshold", round(calibrations[variant]["voxel_threshold"], 3), flush=True)
    probed = probed_model(model, data, calibrations, scans)
    detector = Detector(probed, DetectOptions(device="cpu", regions="all"))
    for name in probed.scorers:
        if "@" in name:
            detector._sets[name] = None  # p-values computed below from the calibration sets of stage 2
    fold_of = dict(zip(data["case_ids"].tolist(), data["folds"].tolist()))
    rng, generator = np.random.default_rng(SEED), torch.Generator().manual_seed(SEED)
    rows: list[dict] = []

    def names(fold: int | None) -> dict[str, str]:
        return {"shipped": BASE, **{v: f"{v}@{'all' if fold is None else fold}" for v in maps}}

    def keep(set_name, variant, case, results, fold, truth=None, spacing=None, extra=None) -> None:
        row = {"set": set_name, "variant": variant, "case": case, **(extra or {})}
        for label, name in names(fold).items():
            s = results[name].summary
            statistic = s["subject_score"]  # the shipped map's conformal map statistic; the variants' is computed here
            if label != "shipped":
                statistic = map_statistic("normalised", results[name].model_heatmap, results[name].preprocessed.mask)
            peak = max((c["peak_score"] for c in s["components"]), default=0.0)  # every region: regions "all"
            row[label] = [float(peak), float(statistic)]
            if truth is not None:
                found = lesion_metrics(sitk.GetArrayFromImage(results[name].labelmap) > 0, truth, spacing, 0.1)
                row[label] += [found["n_lesions"], found["n_detected"]]
        rows.append(row)
        print(set_name, variant, case, {k: [round(x, 2) for x in row[k]] for k in names(fold)}, flush=True)

    def finish(scan, pre, fold):
        encoded = detector.encode(pre, mirrored=True)
        return {n: detector._finish(scan, pre, encoded, n, {}, 0.0) for n in names(fold).values()}

    for i, case in enumerate(set_cases("ixi-val")[: args.limit]):
        fold = fold_of[case.case_id]
        scan, labels = sitk.ReadImage(str(case.images["t1"])), sitk.ReadImage(str(case.brain_mask))
        for variant in VARIANTS:
            keep(
                "ixi-val",
                variant,
                case.case_id,
                detector.detect_scorers(stripped(scan, labels, variant), list(names(fold).values())),
                fold,
            )
        pre = detector.preprocess(scan, {})
        kind = REALISTIC_KINDS[i % len(REALISTIC_KINDS)]
        lesion = paint_realistic(pre.image, pre.mask, rng, kind)
        keep(
            "ixi-val-lesion",
            kind,
            case.case_id,
            finish(scan, replace(pre, image=lesion.image.astype(pre.image.dtype)), fold),
            fold,
        )
        if not args.skip_degraded:
            mask = torch.from_numpy(pre.mask)[None, None].float()
            for copy in range(2):
                image = degrade(torch.from_numpy(pre.image)[None, None], mask, SITE, generator)[0, 0].numpy()
                keep(
                    "ixi-val-degraded",
                    f"copy {copy}",
                    case.case_id,
                    finish(scan, replace(pre, image=image.astype(pre.image.dtype)), fold),
                    fold,
                )
    for case in datasets.brats_half("validation"):
        scan = sitk.ReadImage(str(case.images["t1"]))
        results = detector.detect_scorers(scan, list(names(None).values()))
        truth = sitk.GetArrayFromImage(sitk.ReadImage(str(case.label))) > 0
        spacing = scan.GetSpacing()[::-1]
        outside = float((truth & ~results[BASE].preprocessed.native_mask).sum() * np.prod(spacing) / 1000)
        keep("brats-val", "as given", case.case_id, results, None, truth, spacing,
             {"tumour_ml": float(truth.sum() * np.prod(spacing) / 1000), "tumour_outside_mask_ml": outside})  # fmt: skip
    (OUT / "probe.json").write_text(json.dumps({"rows": rows, "alpha": args.alpha, "calibrations": {
        k: {"voxel_threshold": v["voxel_threshold"]} for k, v in calibrations.items()}}, indent=1))  # fmt: skip
    print(tables(rows, calibrations, args.alpha))


def combined_p(cal: np.ndarray, values: list[float]) -> float:
    return min(1.0, 2.0 * min(p_value(values[0], cal[:, 0]), p_value(values[1], cal[:, 1])))


def tables(rows: list[dict], calibrations: dict, alpha: float) -> str:
    maps = list(calibrations)
    cals = {k: (np.asarray(v["cal"]), v["case_ids"]) for k, v in calibrations.items()}

    def flagged(label: str, row: dict) -> bool:
        cal, ids = cals[label]
        return combined_p(cal[[c != row["case"] for c in ids]], row[label][:2]) <= alpha

    lines = [f"| set | variant | {' | '.join(maps)} |", "|---|---|" + "---|" * len(maps)]
    loo = {
        k: sum(combined_p(np.delete(c, i, 0), list(c[i])) <= alpha for i in range(len(c))) for k, (c, _) in cals.items()
    }
    lines.append(
        "| calibration, each against the others | clean | " + " | ".join(f"{v}/118" for v in loo.values()) + " |"
    )
    for key in dict.fromkeys((r["set"], r["variant"]) for r in rows):
        sel = [r for r in rows if (r["set"], r["variant"]) == key]
        cells = []
        for label in maps:
            flags = [flagged(label, r) for r in sel]
            cell = f"{sum(flags)}/{len(sel)}"
            if key[0] == "brats-val":
                cell += f"; lesions {sum(r[label][3] for r, f in zip(sel, flags) if f)}/{sum(r[label][2] for r in sel)}"
            cells.append(cell)
        lines.append(f"| {key[0]} | {key[1]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
