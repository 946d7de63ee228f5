"""Healthy IXI test scans stripped the way other tools strip them: how often does the shipped model flag them?

    nice -n 10 python benchmarks/skull_stripping.py [--out runs/skull_stripping] [--alpha 0.05] [--limit N]
                                                   [--variants reference,dilated_4mm,...] [--model BUNDLE]

Issue 28 reports a third site whose own skull-stripping tool made 36% of its scans flagged at alpha 0.05 (7 of 21
healthy controls, each with a region where tools disagree: orbitofrontal cortex, temporal poles, pons). The five
other-site scans in ``../shared/data`` were all stripped by one tool, so nothing measured this. Here every IXI
test-split scan (30, never used for any choice) is sent as a skull-stripped scan under each variant of
:mod:`LatentAnomalyLib.evaluation.skull_stripping` (DLMUSE's mask as it is; 4 mm looser; 2 mm tighter; brainstem cut
25 mm above the lowest brain voxel; orbital fat left in), plus the scan with its skull as the calibration scans
had it (``with_skull``), and the product's ``Detector`` runs with its defaults. Printed: per variant, scans
flagged, median p-value, median largest-region peak, and where the largest region sits. Report only: nothing is
chosen from these figures.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch
from cache_scans import set_cases
from common import machine, require_data

from LatentAnomalyLib.bundle.model import Model
from LatentAnomalyLib.evaluation.outputs import markdown_table
from LatentAnomalyLib.evaluation.skull_stripping import VARIANTS, stripped
from LatentAnomalyLib.pipeline import DetectOptions, Detector


def scan_row(detector: Detector, case_id: str, variant: str, image: sitk.Image) -> dict:
    summary = detector.detect(image).summary
    regions = summary.get("components") or summary.get("regions_not_kept") or []
    strongest = max(regions, key=lambda r: r["peak_score"], default=None)
    return {
        "case": case_id,
        "variant": variant,
        "flagged": bool(summary["subject_flagged"]),
        "p": summary.get("subject_p_value"),
        "peak": summary.get("subject_region_peak", 0.0),
        "regions": summary["n_components"],
        "ml": summary["flagged_volume_ml"],
        "input_kind": (summary.get("input") or {}).get("skull"),
        "strongest_ras": None if strongest is None else strongest["centroid_ras_mm"],
    }


def table(rows: list[dict]) -> list[dict]:
    out = []
    for variant in dict.fromkeys(r["variant"] for r in rows):
        sel = [r for r in rows if r["variant"] == variant]
        flagged = sum(r["flagged"] for r in sel)
        inferior = [r for r in sel if r["strongest_ras"] is not None and r["strongest_ras"][2] < -30.0]
        out.append({
            "variant": variant,
            "scans": len(sel),
            "flagged": f"{flagged}/{len(sel)}",
            "median p": float(np.median([r["p"] for r in sel])),
            "median peak": float(np.median([r["peak"] for r in sel])),
            "flagged mL max": max(r["ml"] for r in sel),
            "strongest region below S -30 mm": f"{len(inferior)}/{len(sel)}",
        })  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/skull_stripping")
    parser.add_argument("--model")
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--limit", type=int, help="first N scans (smoke runs)")
    parser.add_argument("--variants", default=",".join(("with_skull", *VARIANTS)))
    args = parser.parse_args()
    require_data()
    torch.set_num_threads(2)
    model = Model.load(args.model)
    detector = Detector(model, DetectOptions(device="cpu", alpha=args.alpha))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cases = set_cases("ixi-test")[: args.limit] if args.limit else set_cases("ixi-test")
    rows: list[dict] = []
    for variant in args.variants.split(","):
        t0 = time.time()
        for case in cases:
            scan = sitk.ReadImage(str(case.images["t1"]))
            image = scan if variant == "with_skull" else stripped(scan, sitk.ReadImage(str(case.brain_mask)), variant)
            rows.append(scan_row(detector, case.case_id, variant, image))
        print(f"{variant}: {len(cases)} scans in {time.time() - t0:.0f} s", flush=True)
        (out / "rows.json").write_text(json.dumps({"machine": machine(), "rows": rows}, indent=1, default=float))
    print(f"\n## IXI test scans under simulated skull stripping, {model.name} {model.version} "
          f"({model.default_scorer}), alpha {args.alpha:g}\n\n{machine()}\n")  # fmt: skip
    print(markdown_table(table(rows), list(table(rows)[0])))


if __name__ == "__main__":
    main()
