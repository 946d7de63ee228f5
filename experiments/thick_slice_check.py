"""Validation check (docs/map-design.md, rule 1): IXI validation scans acquired with thick slices, flagged per model.

    nice -n 5 python experiments/thick_slice_check.py --model models/latent-anomaly-t1 --model runs/bundle-1.10.0-candidate

Each of the first ``--limit`` IXI validation scans is simulated at 1x1x3 and 1x1x5 mm (``clinical_robustness.py``'s
slice profile) and detected with each model's default scorer. A scan is flagged when its ``combined`` p-value
against the model's calibration scans, less the scan's own record (the validation scans are among them), is at
most ``--alpha``: the same leave-own-out reading as ``joint_rank_probe.py``.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import benchmarks_on_path  # noqa: F401 (puts benchmarks/ on the path)
import SimpleITK as sitk
import torch
from cache_scans import set_cases
from clinical_robustness import simulate
from joint_rank_probe import calibration_matrix, rule_p, statistics

from LatentAnomalyLib.bundle.model import Model
from LatentAnomalyLib.pipeline import DetectOptions, Detector


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", required=True)
    parser.add_argument("--limit", type=int, default=20)
    parser.add_argument("--alpha", type=float, default=0.05)
    args = parser.parse_args()
    torch.set_num_threads(2)
    models = [Model.load(m) for m in args.model]
    detectors = [Detector(m, DetectOptions(device="cpu", regions="all")) for m in models]
    calibrations = [calibration_matrix(m) for m in models]
    flagged = {(i, s): [] for i in range(len(models)) for s in (3.0, 5.0)}
    with tempfile.TemporaryDirectory() as work:
        for case in set_cases("ixi-val")[: args.limit]:
            for slices in (3.0, 5.0):
                path = simulate(case.images["t1"], (1.0, 1.0, slices), Path(work) / f"{case.case_id}-{slices:g}.nii.gz")
                scan = sitk.ReadImage(str(path))
                line = []
                for i, (detector, (cal, ids, vt)) in enumerate(zip(detectors, calibrations)):
                    p = rule_p("combined", cal[[c != case.case_id for c in ids]], statistics(detector.detect(scan), vt))
                    flagged[i, slices].append(p <= args.alpha)
                    line.append(f"{models[i].version} p {p:.3f}")
                print(case.case_id, f"1x1x{slices:g} mm", " | ".join(line), flush=True)
    print("| model | 1x1x3 mm | 1x1x5 mm |\n|---|---|---|")
    for i, model in enumerate(models):
        cells = [f"{sum(flagged[i, s])}/{len(flagged[i, s])}" for s in (3.0, 5.0)]
        print(f"| {model.name} {model.version} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
