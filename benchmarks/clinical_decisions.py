"""Calibrated decisions on clinical acquisition grids: does the subject flag keep its rate on thick slices?

    nice -n 10 python benchmarks/clinical_decisions.py [--out runs/clinical_decisions] [--alpha 0.05] [--limit N]

The conformal calibration sets of the bundle were measured on IXI scans at their own ~1.2 x 0.94 x 0.94 mm grid.
Clinical T1 scans are often 2D acquisitions with 3-5 mm slices. This benchmark resamples every scan of the IXI
test split (30), the other-site healthy scans (5), BraTS 2018 T1 (14) and MSLUB T1 (3) to the grids of
``clinical_robustness.py`` (same slice-profile simulation; ground truth by nearest neighbour) and runs the product's
``Detector`` with its defaults (default scorer, ``--alpha``, regions shown by the scan's flag) on each. It prints the
same tables as ``calibration_table.py``: on healthy sets, the subject flag rate and false-positive regions per scan
and flagged mL (median, max) of the label map; on lesion sets, subject sensitivity, lesion-wise sensitivity (all
components, and those of at least 0.1 mL) and pooled voxel Dice, each inside the detector's brain mask. Nothing here
is chosen from these figures: they report how the shipped rules behave on acquisitions they were not calibrated on.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch
from cache_scans import set_cases
from calibration_table import HEALTHY, LESION, lesion_counts, print_tables
from clinical_robustness import SETTINGS, simulate
from common import machine, require_data

from LatentAnomalyLib.bundle.model import Model
from LatentAnomalyLib.case import Case
from LatentAnomalyLib.pipeline import DetectOptions, Detector


def on_grid(case: Case, setting: str, folder: Path) -> tuple[Path, Path | None]:
    """The case's T1 and ground truth as acquired on the setting's grid (the files themselves for ``original``)."""
    spacing = SETTINGS[setting]
    t1 = Path(case.images["t1"])
    if all(s is None for s in spacing):
        return t1, Path(case.label) if case.label else None
    image = simulate(t1, spacing, folder / f"{case.case_id}_t1.nii.gz")
    label = simulate(Path(case.label), spacing, folder / f"{case.case_id}_seg.nii.gz", True) if case.label else None
    return image, label


def scan_row(detector: Detector, name: str, case: Case, setting: str, image: Path, label: Path | None) -> dict:
    """One scan's decision on one grid, and its lesion counts against the ground truth on that grid."""
    result = detector.detect(sitk.ReadImage(str(image)))
    s = result.summary
    row = {"set": name, "case": case.case_id, "setting": setting, "flagged": s["subject_flagged"],
           "regions": s["n_components"], "ml": s["flagged_volume_ml"], "p": s.get("subject_p_value"),
           "score": s["subject_score"], "shape": list(result.heatmap.GetSize())}
    if label is not None:
        truth = sitk.GetArrayFromImage(sitk.ReadImage(str(label))) > 0
        row.update(lesion_counts(result.labelmap, truth, result.preprocessed.native_mask))
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/clinical_decisions")
    parser.add_argument("--model")
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--limit", type=int, help="first N scans of each set (smoke runs)")
    parser.add_argument("--settings", default=",".join(SETTINGS), help="comma-separated subset of the settings")
    parser.add_argument("--sets", default=",".join((*HEALTHY, *LESION)))
    args = parser.parse_args()
    require_data()
    torch.set_num_threads(2)
    model = Model.load(args.model)
    detector = Detector(model, DetectOptions(device="cpu", alpha=args.alpha))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    for setting in args.settings.split(","):
        for name in args.sets.split(","):
            t0 = time.time()
            cases = set_cases(name)[: args.limit] if args.limit else set_cases(name)
            with tempfile.TemporaryDirectory(dir=out) as folder:
                for case in cases:
                    image, label = on_grid(case, setting, Path(folder))
                    rows.append(scan_row(detector, name, case, f"{setting}, alpha {args.alpha:g}", image, label))
            print(f"{setting} {name}: {len(cases)} scans in {time.time() - t0:.0f} s", flush=True)
            (out / "rows.json").write_text(json.dumps({"machine": machine(), "rows": rows}, indent=1, default=float))
    print(f"\n## Calibrated decisions on clinical grids, {model.name} {model.version} ({model.default_scorer})")
    print(f"\n{machine()}\n")
    print_tables(rows)
    settings = dict.fromkeys(r["setting"] for r in rows)
    healthy_p = {k: [r["p"] for r in rows if r["setting"] == k and r["set"] in HEALTHY] for k in settings}
    median_p = {k: float(np.median(p)) for k, p in healthy_p.items() if p}
    print(f"\nmedian healthy p-value per setting: {median_p}")

if __name__ == "__main__":
    main()
