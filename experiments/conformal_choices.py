"""Choose the subject statistic (site adaptation) and the region statistic of the conformal rules on IXI validation.

    nice -n 5 python experiments/conformal_choices.py [--work runs/crossfit] [--cache runs/scan_cache/latent-anomaly-t1-1.4.0]

Needs the cross-fit records and fold scorers (``python -m LatentAnomalyLib.cli.calibrate crossfit``). Only IXI train
and validation scans are used: never the IXI test split, other sites, BraTS or MSLUB.

Data (all on the model grid, through the bundle's Detector post-processing and components on the scan's grid):
- calibration: the cross-fit records of the 98 IXI *train* scans (the 20 validation scans are left out of it
  here, so that their degraded copies are not compared with their own clean records);
- healthy, acquisition-changed: each of the 20 validation scans, degraded twice (seeded) by the training
  augmentation's input changes, all on: contrast, gamma (30%), bias field, noise, and either blur or
  sharpening (half each) -> 40 scans; scored by the fold scorer that held the scan out;
- lesions: the training run's synthetic lesions (4 kinds) painted into every validation scan, clean and
  degraded -> 160 scans, same fold scorers.

Candidates: subject statistic ``raw`` (model 1.4.0: mean of the top 1% raw voxel scores), ``normalised``
(the same on the scan-standardised map, (s - median) / MAD over the brain) and ``shifted`` (raw minus the
scan's median); region statistic ``peak`` (peak score), ``volume`` (mL) and ``mass`` (mL x mean excess over
the voxel threshold), each compared with the per-scan maxima of the calibration scans.

Decision rule (written before running; alpha = 0.05):
- subject: FFR = fraction of the 40 degraded healthy scans with p <= alpha; SENS = fraction of the 160 lesion
  scans with p <= alpha. Eligible: FFR <= 0.10. Choose the eligible candidate with the highest SENS (ties:
  raw, normalised, shifted in that order); if none is eligible, the one with the lowest FFR.
- region: FPR = fraction of the 40 degraded healthy scans with any region of p <= alpha; DET = fraction of
  the 160 synthetic lesions overlapped by a kept region. Eligible: FPR <= 0.10. Choose the eligible candidate
  with the highest DET (ties: peak, mass, volume); if none is eligible, the one with the lowest FPR.
The clean validation scans' rates are printed for information only.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import benchmarks_on_path  # noqa: F401  (benchmarks/ helpers)
import numpy as np
import SimpleITK as sitk
import torch
from common import machine
from grid_maps import encode_latent

from LatentAnomalyLib import DEFAULT_SEED
from LatentAnomalyLib.bundle.model import Model
from LatentAnomalyLib.evaluation import datasets
from LatentAnomalyLib.evaluation.outputs import markdown_table
from LatentAnomalyLib.evaluation.synthetic import KINDS, paint_lesion
from LatentAnomalyLib.pipeline import DetectOptions, Detector
from LatentAnomalyLib.score.base import EncodedScan, mirror_x
from LatentAnomalyLib.score.conformal import p_values, region_statistic
from LatentAnomalyLib.training.augment import AugmentConfig, degrade
from LatentAnomalyLib.training.crossfit import load_fold_scorer, subject_candidates
from LatentAnomalyLib.training.scan_cache import CachedScan, cached

ALPHA = 0.05
SITE = AugmentConfig(
    contrast_probability=1.0, bias_probability=1.0, blur_probability=0.5, sharpen_probability=1.0, noise_probability=1.0
)
SUBJECT_CANDIDATES = ("raw", "normalised", "shifted")  # tie order (design 1)
REGION_CANDIDATES = ("peak", "mass", "volume")  # tie order
LIMIT = 0.10


def variant(model: Model, scan: CachedScan, image: np.ndarray) -> EncodedScan:
    """``scan`` with another model-grid image (degraded or with a lesion), encoded like detect encodes it."""
    encoded = EncodedScan(image, scan.pre.mask, encode_latent(model, image), subject=scan.case_id)
    encoded.mirrored_latent = encode_latent(model, mirror_x(image))
    return encoded


def measure(model: Model, name: str, scorer, scan: CachedScan, encoded: EncodedScan, label=None) -> dict:
    """Subject candidates and regions of one variant; with ``label`` (model grid), which regions touch it."""
    import dataclasses

    fold_model = dataclasses.replace(model, scorers={**model.scorers, name: scorer})
    detector = Detector(fold_model, DetectOptions(scorer=name, device="cpu", regions="all"))
    detector._sets[name] = None
    result = detector._finish(scan.image, scan.pre, encoded, name, {}, 0.0)
    out = {"subject": subject_candidates(scorer.score(encoded), scan.pre.mask), "regions": result.summary["components"]}
    if label is not None:
        native = sitk.GetArrayFromImage(scan.pre.to_native(label.astype(np.float32), model.preprocess.grid)) > 0.5
        ids, _ = _ids(result, model, name)
        touched = set(np.unique(ids[native]).tolist()) - {0}
        out["touches"] = [c["id"] in touched for c in result.summary["components"]]
    return out


def _ids(result, model: Model, name: str):
    from LatentAnomalyLib.score.components import label_components

    cal = model.calibration["scorers"][name]
    heat = sitk.GetArrayFromImage(result.heatmap)
    return label_components(heat, float(cal["voxel_threshold"]), result.heatmap, float(cal["min_component_ml"]), True)


def calibration_and_validation(description: str, work_default: str) -> tuple[dict, list[dict], dict]:
    """Parse the command line (``--work --cache --model --seed``); the cross-fit records, their 98 train-scan
    records (the calibration) and the measured validation variants."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--work", default=work_default)
    parser.add_argument("--cache", default="runs/scan_cache/latent-anomaly-t1-1.4.0")
    parser.add_argument("--model")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args()
    torch.set_num_threads(1)
    work = Path(args.work)
    records = json.loads((work / "records.json").read_text())
    train = [r for r in records["records"] if r["part"] == "train"]
    model = Model.load(args.model)
    return records, train, measure_validation(model, work, Path(args.cache), args.seed, work / "choices_measured.json")


def main() -> None:
    records, train, measured = calibration_and_validation(__doc__.splitlines()[0], "runs/crossfit")
    report(train, measured, records["voxel_threshold"])


def measure_validation(model: Model, work: Path, cache: Path, seed: int, cache_file: Path) -> dict[str, list[dict]]:
    """The clean, degraded and lesion variants of the 20 validation scans, each scored by the fold scorer that
    held it out (measured once; ``cache_file`` keeps the measurements)."""
    if cache_file.is_file():
        return json.loads(cache_file.read_text())
    records = json.loads((work / "records.json").read_text())
    name = records["scorer"]
    fold_of = {r["case_id"]: r["fold"] for r in records["records"]}
    measured: dict[str, list[dict]] = {"clean": [], "degraded": [], "lesion": []}
    detector = Detector(model, DetectOptions(device="cpu"))
    generator = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    scorers = {}
    for case in datasets.ixi_cases("val"):
        scan = cached(detector, cache / "ixi-val", case.case_id, case.images["t1"])
        f = fold_of[case.case_id]
        if f not in scorers:  # the fold's scorer as cross-fitting used it (both parts for a combined scorer)
            scorers[f] = load_fold_scorer(model, name, work / f"fold{f}")
        scorer = scorers[f]
        measured["clean"].append(measure(model, name, scorer, scan, scan.encoded))
        mask_t = torch.from_numpy(scan.pre.mask)[None, None].float()
        for copy in range(2):
            image = degrade(torch.from_numpy(scan.pre.image)[None, None], mask_t, SITE, generator)[0, 0].numpy()
            image = image.astype(np.float32)
            measured["degraded"].append(measure(model, name, scorer, scan, variant(model, scan, image)))
            if copy == 0:  # lesions in the clean scan and in its first degraded copy
                for base in (scan.pre.image, image):
                    for kind in KINDS:
                        lesion = paint_lesion(base, scan.pre.mask, rng, kind)
                        encoded = variant(model, scan, lesion.image)
                        measured["lesion"].append(measure(model, name, scorer, scan, encoded, lesion.label))
        print(f"measured {case.case_id}", flush=True)
    cache_file.write_text(json.dumps(measured, default=float))
    return measured


def _kept(measured: dict, statistic: str, calibration: np.ndarray, threshold: float) -> list[bool]:
    """Which regions of one measured scan have p <= alpha for ``statistic``."""
    stats = [region_statistic(g, statistic, threshold) for g in measured["regions"]]
    return list(p_values(stats, calibration) <= ALPHA) if stats else []


def report(train: list[dict], measured: dict, threshold: float) -> None:
    print(f"{machine()}; calibration: {len(train)} IXI train scans (cross-fit); alpha {ALPHA}")
    rows, choice = [], {}
    for c in SUBJECT_CANDIDATES:
        cal = np.array([r["subject"][c] for r in train])
        rate = {k: float(np.mean(p_values([m["subject"][c] for m in v], cal) <= ALPHA)) for k, v in measured.items()}
        rows.append({"subject statistic": c, "clean FFR": rate["clean"], "degraded FFR": rate["degraded"],
                     "lesion SENS": rate["lesion"]})
    print(markdown_table(rows, ["subject statistic", "clean FFR", "degraded FFR", "lesion SENS"]))
    eligible = [r for r in rows if r["degraded FFR"] <= LIMIT]
    best = max(eligible, key=lambda r: r["lesion SENS"]) if eligible else min(rows, key=lambda r: r["degraded FFR"])
    choice["subject"] = best["subject statistic"]
    rows = []
    for c in REGION_CANDIDATES:
        cal = np.array([max([region_statistic(g, c, threshold) for g in r["regions"]], default=0.0) for r in train])

        fpr = {k: float(np.mean([any(_kept(m, c, cal, threshold)) for m in measured[k]])) for k in ("clean", "degraded")}
        det = float(
            np.mean([any(k and t for k, t in zip(_kept(m, c, cal, threshold), m["touches"])) for m in measured["lesion"]])
        )
        rows.append({"region statistic": c, "clean FPR": fpr["clean"], "degraded FPR": fpr["degraded"], "DET": det})
    print(markdown_table(rows, ["region statistic", "clean FPR", "degraded FPR", "DET"]))
    eligible = [r for r in rows if r["degraded FPR"] <= LIMIT]
    best = max(eligible, key=lambda r: r["DET"]) if eligible else min(rows, key=lambda r: r["degraded FPR"])
    choice["region"] = best["region statistic"]
    print(f"choice by the rule: subject statistic {choice['subject']}, region statistic {choice['region']}")


if __name__ == "__main__":
    main()
