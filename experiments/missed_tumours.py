"""Why BraTS tumours go unflagged: is it the brain mask, the calibration or the score map? (report only)

    nice -n 5 python experiments/missed_tumours.py [--model models/latent-anomaly-t1] [--alpha 0.05]

For every BraTS 2018 T1 scan, the product's ``Detector`` (default scorer, ``--alpha``) gives the decision; the
heatmap on the scan's grid is then read inside and outside the whole-tumour mask (both within the detector's brain
mask). Printed per scan: flagged, subject p-value, largest region peak and the alpha threshold it is compared with,
the fraction of the tumour inside the brain mask, the tumour's heat (median, 95th percentile, max) and the rest of
the brain's heat (99th percentile, max). A tumour whose maximum heat is below the scan's own non-tumour maximum
cannot be told apart by any threshold on this map. Nothing is chosen from it: BraTS is a reported set.
"""

from __future__ import annotations

import argparse

import benchmarks_on_path  # noqa: F401  (benchmarks/ helpers)
import numpy as np
import SimpleITK as sitk
import torch
from common import machine, require_data

from LatentAnomalyLib.bundle.model import Model
from LatentAnomalyLib.evaluation.datasets import brats_cases
from LatentAnomalyLib.evaluation.outputs import markdown_table
from LatentAnomalyLib.pipeline import DetectOptions, Detector

COLUMNS = ("case", "flagged", "p", "region peak", "peak threshold", "tumour mL", "tumour voxels outside mask",
           "tumour heat median", "tumour heat p95", "tumour heat max", "rest p99", "rest max")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model")
    parser.add_argument("--alpha", type=float, default=0.05)
    args = parser.parse_args()
    root = require_data()
    torch.set_num_threads(2)
    model = Model.load(args.model)
    detector = Detector(model, DetectOptions(device="cpu", alpha=args.alpha, regions="all"))
    rows = []
    for case in brats_cases(root):
        result = detector.detect(sitk.ReadImage(str(case.images["t1"])))
        s = result.summary
        heat = sitk.GetArrayFromImage(result.heatmap)
        tumour = sitk.GetArrayFromImage(sitk.ReadImage(str(case.label))) > 0
        brain = result.preprocessed.native_mask
        inside, rest = heat[tumour & brain], heat[brain & ~tumour]
        voxel_ml = float(np.prod(result.heatmap.GetSpacing())) / 1000.0
        rows.append({
            "case": case.case_id, "flagged": "yes" if s["subject_flagged"] else "no", "p": s.get("subject_p_value"),
            "region peak": s.get("subject_region_peak"), "peak threshold": s.get("subject_region_peak_threshold"),
            "tumour mL": float(tumour.sum()) * voxel_ml, "tumour in brain mask": float((tumour & brain).sum() / tumour.sum()),
            "tumour voxels outside mask": int((tumour & ~brain).sum()),
            "tumour heat median": float(np.median(inside)), "tumour heat p95": float(np.percentile(inside, 95)),
            "tumour heat max": float(inside.max()), "rest p99": float(np.percentile(rest, 99)), "rest max": float(rest.max()),
        })
        print(case.case_id, flush=True)
    print(f"\n## BraTS T1: where the heat is, {model.name} {model.version} ({model.default_scorer}), alpha {args.alpha:g}")
    print(f"\n{machine()}\n")
    print(markdown_table(rows, COLUMNS))
    missed = [r for r in rows if r["flagged"] == "no"]
    below = [r for r in missed if r["tumour heat max"] <= r["rest max"]]
    print(f"\n{len(missed)} of {len(rows)} not flagged; in {len(below)} of them the tumour's hottest voxel is not above "
          "the hottest voxel elsewhere in the same brain")
    flagged = [r for r in rows if r["flagged"] == "yes"]
    outside = [r for r in flagged if r["rest max"] > r["tumour heat max"]]
    print(f"{len(outside)} of {len(flagged)} flagged scans have their hottest voxel outside the tumour label")
    print(f"tumour voxels outside the brain mask, all scans: {sum(r['tumour voxels outside mask'] for r in rows)}")


if __name__ == "__main__":
    main()
