"""Probe (validation only) of docs/map-design.md's subject statistic: joint rank against the shipped region peak.

    nice -n 5 python experiments/joint_rank_probe.py [--limit 20] [--pipeline current|thick_fill|band_mask_thick_fill] [--no-lesions] [--degraded-only] [--thick-slices-only]
        [--lesions-only VARIANT]

Each scan goes once through detection (``--regions all``, model 1.8.0) and keeps three statistics: its largest
region peak (what decides today), its map statistic (mean of the top 1% of the scan-standardised map) and its
largest region mass (mL x mean excess over the voxel threshold). The rules are then applied to the stored
statistics against the bundle's 118 cross-fitted IXI calibration scans, leaving out the scan's own calibration
record when it has one (IXI validation scans are among the 118):
``region_peak`` (shipped), ``combined`` (Bonferroni of map statistic and peak), ``joint3`` (joint rank of all three,
:mod:`LatentAnomalyLib.score.joint_rank`), ``joint_peak_mass`` and ``joint_peak_map`` (two of them).

Inputs (never IXI test, never the BraTS report half): the first ``--limit`` IXI validation scans under each
skull-stripping variant; the same scans with one lesion of the second generator
(:mod:`LatentAnomalyLib.evaluation.realistic_lesions`, kinds in turn) painted after preprocessing; the 7 BraTS
validation cases (scan flag and lesion-wise detection of tumour components >= 0.1 mL, every region of a flagged
scan shown, as the bundle's ``flagged_scan`` rule does); and the 118 calibration scans themselves, each against
the other 117. ``--pipeline`` is one of stripped_boundary_probe.py's (the shipped one, ``thick_fill``,
``band_mask_thick_fill``; skull-stripped inputs only). Writes runs/joint_rank_probe/<pipeline>.json and prints the tables.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from dataclasses import replace
from pathlib import Path

import benchmarks_on_path  # noqa: F401 (puts benchmarks/ on the path)
import numpy as np
import SimpleITK as sitk
import torch
from cache_scans import set_cases
from conformal_choices import SITE  # design 1's degraded copies
from stripped_boundary_probe import probed_detector

from LatentAnomalyLib.bundle.model import Model
from LatentAnomalyLib.evaluation import datasets
from LatentAnomalyLib.evaluation.metrics import lesion_metrics
from LatentAnomalyLib.evaluation.realistic_lesions import REALISTIC_KINDS, paint_realistic
from LatentAnomalyLib.evaluation.skull_stripping import VARIANTS, stripped
from LatentAnomalyLib.pipeline import DetectionResult, Detector
from LatentAnomalyLib.score.conformal import p_value, region_statistic
from LatentAnomalyLib.score.joint_rank import joint_rank_p, largest_region_masses
from LatentAnomalyLib.training.augment import degrade

ROOT = Path(__file__).resolve().parents[1]
RULES = {
    "region_peak": [0],
    "combined": [0, 1],
    "joint3": [0, 1, 2],
    "joint_peak_mass": [0, 2],
    "joint_peak_map": [0, 1],
}
SEED = 20261207
PIPELINES = ("current", "thick_fill", "band_mask_thick_fill")  # see stripped_boundary_probe.py


def calibration_matrix(model: Model) -> tuple[np.ndarray, list[str], float]:
    """(n, 3) peak, map statistic, mass of the calibration scans, their case ids and the voxel threshold."""
    name = model.default_scorer
    entry = model.calibration["scorers"][name]["conformal"]
    a = model.bundle.arrays(entry["arrays"])
    p = entry.get("prefix", name)
    vt = float(model.calibration["scorers"][name]["voxel_threshold"])
    n = a[f"{p}.subject_scores"].size
    mass = largest_region_masses(a[f"{p}.region_scan"], a[f"{p}.region_volume_ml"], a[f"{p}.region_mean"], n, vt)
    return np.stack([a[f"{p}.region_max"], a[f"{p}.subject_scores"], mass], axis=1), list(entry["case_ids"]), vt


def statistics(result: DetectionResult, vt: float) -> list[float]:
    s = result.summary
    mass = max((region_statistic(c, "mass", vt) for c in s["components"]), default=0.0)
    return [float(s["subject_region_peak"]), float(s["subject_score"]), float(mass)]


def rule_p(rule: str, cal: np.ndarray, values: list[float]) -> float:
    cols = RULES[rule]
    if rule == "region_peak":
        return p_value(values[0], cal[:, 0])
    if rule == "combined":
        return min(1.0, 2.0 * min(p_value(values[0], cal[:, 0]), p_value(values[1], cal[:, 1])))
    return joint_rank_p(cal[:, cols], [values[c] for c in cols])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=20)
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--pipeline", default="current", choices=PIPELINES)
    parser.add_argument(
        "--thick-slices-only",
        action="store_true",
        help="only the IXI validation scans (with skull) acquired at 1x1x3 and 1x1x5 mm (clinical_robustness.py)",
    )
    parser.add_argument(
        "--degraded-only",
        action="store_true",
        help="only the IXI validation scans (with skull), each degraded twice on the model grid as design 1 did",
    )
    parser.add_argument(
        "--lesions-only",
        metavar="VARIANT",
        help="only the painted lesions, on the scans stripped by VARIANT (e.g. reference) instead of with skull",
    )
    parser.add_argument(
        "--no-lesions",
        action="store_true",
        help="skip the painted lesions (on scans with skull, which thick_fill leaves as they are)",
    )
    args = parser.parse_args()
    torch.set_num_threads(2)
    model = Model.load(None)
    cal, case_ids, vt = calibration_matrix(model)
    fill, band = "thick_fill" in args.pipeline, args.pipeline.startswith("band_mask")
    detector: Detector = probed_detector(model, args.alpha, fill, False, band, band=band)
    detector.options = replace(detector.options, regions="all")
    rng = np.random.default_rng(SEED)
    rows: list[dict] = []

    def keep(set_name: str, variant: str, case_id: str, result: DetectionResult, **extra) -> None:
        rows.append({"set": set_name, "variant": variant, "case": case_id, "stats": statistics(result, vt), **extra})
        print(set_name, variant, case_id, [round(v, 2) for v in rows[-1]["stats"]], flush=True)

    if args.degraded_only or args.thick_slices_only:
        name = "degraded" if args.degraded_only else "thick-slices"
        (degraded_rows if args.degraded_only else thick_slice_rows)(detector, args.limit, keep)
        write(rows, args.alpha, name)
        print(tables(rows, cal, case_ids, args.alpha))
        return
    for i, case in enumerate(set_cases("ixi-val")[: args.limit]):
        scan, labels = sitk.ReadImage(str(case.images["t1"])), sitk.ReadImage(str(case.brain_mask))
        for variant in [] if args.lesions_only else VARIANTS:
            keep("ixi-val", variant, case.case_id, detector.detect(stripped(scan, labels, variant)))
        if args.no_lesions:
            continue
        if args.lesions_only:
            scan = stripped(scan, labels, args.lesions_only)
        pre = detector.preprocess(scan, {})
        kind = REALISTIC_KINDS[i % len(REALISTIC_KINDS)]
        lesion = paint_realistic(pre.image, pre.mask, rng, kind)
        pre = replace(pre, image=lesion.image.astype(pre.image.dtype))
        result = detector._finish(scan, pre, detector.encode(pre), detector.scorer_name, {}, 0.0)
        keep("ixi-val-lesion" + (f" ({args.lesions_only})" if args.lesions_only else ""), kind, case.case_id, result)
    if args.lesions_only:
        write(rows, args.alpha, f"{args.pipeline}-lesions-{args.lesions_only}")
        print(tables(rows, cal, case_ids, args.alpha))
        return
    for case in datasets.brats_half("validation"):
        scan = sitk.ReadImage(str(case.images["t1"]))
        result = detector.detect(scan)
        truth = sitk.GetArrayFromImage(sitk.ReadImage(str(case.label))) > 0
        found = lesion_metrics(sitk.GetArrayFromImage(result.labelmap) > 0, truth, scan.GetSpacing()[::-1], 0.1)
        keep("brats-val", "as given", case.case_id, result, lesions=found["n_lesions"], found=found["n_detected"])
    write(rows, args.alpha, args.pipeline)
    print(tables(rows, cal, case_ids, args.alpha))


def write(rows: list[dict], alpha: float, name: str) -> None:
    out = ROOT / "runs" / "joint_rank_probe"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps({"rows": rows, "alpha": alpha}, indent=1))


def thick_slice_rows(detector: Detector, limit: int, keep) -> None:
    """Each IXI validation scan as acquired with 3 mm and 5 mm slices (slice profile, then linear resampling)."""
    from clinical_robustness import simulate

    with tempfile.TemporaryDirectory() as work:
        for case in set_cases("ixi-val")[:limit]:
            for slices in (3.0, 5.0):
                path = simulate(case.images["t1"], (1.0, 1.0, slices), Path(work) / f"{case.case_id}-{slices:g}.nii.gz")
                keep(
                    "ixi-val-thick-slices",
                    f"1x1x{slices:g} mm",
                    case.case_id,
                    detector.detect(sitk.ReadImage(str(path))),
                )


def degraded_rows(detector: Detector, limit: int, keep) -> None:
    """Two seeded degraded copies (contrast, bias, blur or sharpening, noise) of each IXI validation scan."""
    generator = torch.Generator().manual_seed(SEED)
    for case in set_cases("ixi-val")[:limit]:
        scan = sitk.ReadImage(str(case.images["t1"]))
        pre = detector.preprocess(scan, {})
        mask = torch.from_numpy(pre.mask)[None, None].float()
        for copy in range(2):
            image = degrade(torch.from_numpy(pre.image)[None, None], mask, SITE, generator)[0, 0].numpy()
            degraded = replace(pre, image=image.astype(pre.image.dtype))
            result = detector._finish(scan, degraded, detector.encode(degraded), detector.scorer_name, {}, 0.0)
            keep("ixi-val-degraded", f"copy {copy}", case.case_id, result)


def tables(rows: list[dict], cal: np.ndarray, case_ids: list[str], alpha: float) -> str:
    def against(case: str) -> np.ndarray:
        return cal[[c != case for c in case_ids]]

    lines = [f"| set | variant | {' | '.join(RULES)} |", "|---|---|" + "---|" * len(RULES)]
    loo = {r: [rule_p(r, np.delete(cal, i, 0), list(cal[i])) <= alpha for i in range(len(cal))] for r in RULES}
    lines.append(
        "| calibration, each against the other 117 | clean | "
        + " | ".join(f"{sum(v)}/{len(v)}" for v in loo.values())
        + " |"
    )
    for key in dict.fromkeys((r["set"], r["variant"]) for r in rows):
        sel = [r for r in rows if (r["set"], r["variant"]) == key]
        flags = {rule: [rule_p(rule, against(r["case"]), r["stats"]) <= alpha for r in sel] for rule in RULES}
        cells = [f"{sum(f)}/{len(f)}" for f in flags.values()]
        if key[0] == "brats-val":
            n = sum(r["lesions"] for r in sel)
            cells = [
                f"{c}, lesions {sum(r['found'] for r, k in zip(sel, f) if k)}/{n}"
                for c, f in zip(cells, flags.values())
            ]
        lines.append(f"| {key[0]} | {key[1]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
