"""Encoder family x scorer table (issue 16) for whatever bundles are given.

For each bundle (its encoder family read from config.json) and each of its scorers:
- ``val AUPRC``: voxel AUPRC on the synthetic lesions painted into the bundle's validation scans,
  as recorded at training (metrics.json) - where choices are made;
- ``BraTS`` / ``MSLUB``: mean over cases of the voxel AUPRC of the T1 heatmap within the library's
  brain mask (reported, never used for choices);
- ``subj AUROC``: scan-level AUROC, lesion scans (BraTS + MSLUB) against healthy IXI test scans,
  with the subject score of each scorer;
- ``healthy flagged``: median fraction of brain flagged in the healthy IXI test scans at the
  scorer's calibrated threshold.

Every case is preprocessed and encoded once per bundle and scored by all of its scorers. With
``--scan-cache`` the preprocessing is read from the benchmark scan cache (``benchmarks/cache_scans.py``:
the bundled model's preprocessing, which every configuration in ``configs/`` shares) and only the
encoding and scoring run per bundle. ``--exclude WORK/family_workdir.json`` drops the lesion scans that
were injected into that bundle's training set (``benchmarks/family_workdir.py --inject``).

    python benchmarks/encoder_families.py BUNDLE [BUNDLE ...] [--max-cases N] [--json OUT]
        [--scan-cache runs/scan_cache/latent-anomaly-t1-1.4.0] [--exclude WORK/family_workdir.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk
from common import machine, require_data

from LatentAnomalyLib.bundle.model import Model
from LatentAnomalyLib.case import Case
from LatentAnomalyLib.evaluation import datasets
from LatentAnomalyLib.evaluation.metrics import subject_metrics, voxel_metrics
from LatentAnomalyLib.io.read import read_image
from LatentAnomalyLib.pipeline import DetectOptions, Detector
from LatentAnomalyLib.score.base import needs_mirror
from LatentAnomalyLib.training.scan_cache import cache_path, load

CACHE_SETS = {"brats": "brats", "mslub": "mslub", "healthy": "ixi-test"}


def _cases(root: Path, max_cases: int | None, exclude: set[str]) -> dict[str, list[Case]]:
    parts = {
        "brats": datasets.brats_cases(root),
        "mslub": datasets.mslub_cases(root),
        "healthy": datasets.ixi_cases("test", root),
    }
    parts = {k: [c for c in v if c.case_id not in exclude] for k, v in parts.items()}
    return {k: v[:max_cases] if max_cases else v for k, v in parts.items()}


def _detect(
    detector: Detector, names: list[str], case: Case, part: str, scan_cache: Path | None
) -> dict[str, Any]:
    """Every scorer's result on one case; preprocessing from the scan cache when one is given."""
    if scan_cache is None:
        return detector.detect_scorers(read_image(case.images["t1"]), names)
    cached = load(cache_path(scan_cache / CACHE_SETS[part], case.case_id), case.images["t1"], case.case_id)
    scorers = [detector.model.scorers[n] for n in names]
    need = any("reconstruction" in s.needs for s in scorers)
    encoded = detector.encode(cached.pre, need, any(needs_mirror(s) for s in scorers))
    return {n: detector._finish(cached.image, cached.pre, encoded, n, {}, 0.0) for n in names}


def evaluate_bundle(path: Path, cases: dict[str, list[Case]], scan_cache: Path | None = None) -> dict[str, Any]:
    """Per scorer: the table's columns for one bundle."""
    model = Model.load(path)
    names = list(model.scorers)
    detector = Detector(model, DetectOptions(device="auto"))
    auprc: dict[str, dict[str, list[float]]] = {n: {"brats": [], "mslub": []} for n in names}
    subject: dict[str, list[tuple[float, bool]]] = {n: [] for n in names}
    flagged: dict[str, list[float]] = {n: [] for n in names}
    t0 = time.time()
    for part, part_cases in cases.items():
        for case in part_cases:
            results = _detect(detector, names, case, part, scan_cache)
            truth = None if case.label is None else sitk.GetArrayFromImage(sitk.ReadImage(str(case.label))) > 0
            for name, result in results.items():
                subject[name].append((float(result.summary["subject_score"]), part != "healthy"))
                if truth is None:
                    flagged[name].append(float(result.summary["flagged_fraction_of_brain"]))
                    continue
                brain = result.preprocessed.native_mask
                heat = sitk.GetArrayFromImage(result.heatmap)
                value = voxel_metrics(heat[brain], truth[brain])["auprc"]
                if value is not None:
                    auprc[name][part].append(float(value))
    training = model.metrics.get("scorers", {})
    rows = {}
    for name in names:
        scores, lesion = zip(*subject[name]) if subject[name] else ((), ())
        rows[name] = {
            "val_auprc": training.get(name, {}).get("synthetic_validation", {}).get("auprc"),
            "brats_auprc": float(np.mean(auprc[name]["brats"])) if auprc[name]["brats"] else None,
            "mslub_auprc": float(np.mean(auprc[name]["mslub"])) if auprc[name]["mslub"] else None,
            "subject_auroc": subject_metrics(list(scores), list(lesion))["auroc"],
            "healthy_flagged": float(np.median(flagged[name])) if flagged[name] else None,
        }
    family = model.config["encoder"].get("family", "?")
    return {"bundle": str(path), "family": family, "seconds": round(time.time() - t0, 1), "scorers": rows}


def _cell(value: float | None, percent: bool = False) -> str:
    if value is None:
        return "-"
    return f"{100 * value:.2f}%" if percent else f"{value:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundles", nargs="+", type=Path)
    parser.add_argument("--max-cases", type=int, help="first N cases of each dataset (smoke runs)")
    parser.add_argument("--json", type=Path, help="also write the results as JSON")
    parser.add_argument("--scan-cache", type=Path, help="read preprocessing from this scan cache folder")
    parser.add_argument("--exclude", type=Path, help="family_workdir.json: leave out its injected lesion scans")
    args = parser.parse_args()
    exclude = set(json.loads(args.exclude.read_text())["injected"]) if args.exclude else set()
    cases = _cases(require_data(), args.max_cases, exclude)
    counts = ", ".join(f"{k} {len(v)}" for k, v in cases.items())
    print(f"# encoder families x scorers ({counts} cases; {machine()})")
    results = [evaluate_bundle(path, cases, args.scan_cache) for path in args.bundles]
    header = f"| {'family':<8} | {'scorer':<12} | val AUPRC | BraTS AUPRC | MSLUB AUPRC | subj AUROC | healthy flagged |"
    print(header)
    print("|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1]) + "|")
    for result in results:
        for name, row in result["scorers"].items():
            print(
                f"| {result['family']:<8} | {name:<12} | {_cell(row['val_auprc']):>9} | {_cell(row['brats_auprc']):>11} "
                f"| {_cell(row['mslub_auprc']):>11} | {_cell(row['subject_auroc']):>10} "
                f"| {_cell(row['healthy_flagged'], True):>15} |"
            )
    for result in results:
        print(f"# {result['bundle']}: {result['seconds']} s")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
