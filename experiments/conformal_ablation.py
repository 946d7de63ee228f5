"""Report-only ablation of the conformal rules on the reported sets: every subject and region statistic, several alphas.

    nice -n 5 python experiments/conformal_ablation.py [--work runs/crossfit]

Written and run AFTER model 1.5.0's choice (experiments/conformal_choices.py, on validation only) and after its
before/after table: it shows what the candidates the rule rejected would have given on IXI test, other sites,
BraTS T1 and MSLUB, for whoever decides the next model. Nothing in the bundle was chosen from it. Calibration:
the cross-fit records of all 118 IXI train+validation scans (as in the bundle); scores: the shipped scorer.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import benchmarks_on_path  # noqa: F401  (benchmarks/ helpers)
import numpy as np
import SimpleITK as sitk
import torch
from cache_scans import cache_folder, set_cases
from common import machine

from LatentAnomalyLib.bundle.model import Model
from LatentAnomalyLib.evaluation.metrics import lesion_metrics
from LatentAnomalyLib.evaluation.outputs import markdown_table
from LatentAnomalyLib.pipeline import DetectOptions, Detector
from LatentAnomalyLib.score.components import label_components
from LatentAnomalyLib.score.conformal import p_values, region_statistic
from LatentAnomalyLib.training.crossfit import SUBJECT_CANDIDATES, subject_candidates
from LatentAnomalyLib.training.scan_cache import cached

SETS = ("ixi-test", "other-sites", "brats", "mslub")
ALPHAS = (0.05, 0.1, 0.2)
REGIONS = ("peak", "mass", "volume")


def measure(model: Model, name: str) -> list[dict]:
    """Per scan: subject candidates, regions, and for lesion scans which regions touch which lesions."""
    detector = Detector(model, DetectOptions(device="cpu", regions="all"))
    scorer_name = model.default_scorer
    cal = model.calibration["scorers"][scorer_name]
    out = []
    for case in set_cases(name):
        scan = cached(detector, cache_folder(model, name), case.case_id, case.images["t1"])
        result = detector._finish(scan.image, scan.pre, scan.encoded, scorer_name, {}, 0.0)
        heat = sitk.GetArrayFromImage(result.heatmap)
        ids, regions = label_components(heat, cal["voxel_threshold"], result.heatmap, cal["min_component_ml"], True)
        row = {"set": name, "subject": subject_candidates(model.scorers[scorer_name].score(scan.encoded), scan.pre.mask),
               "regions": regions}
        if case.label:
            brain = scan.pre.native_mask
            row["truth"] = sitk.GetArrayFromImage(sitk.ReadImage(str(case.label))) > 0
            row["truth"] &= brain
            row["ids"], row["spacing"] = ids * brain, tuple(scan.image.GetSpacing()[::-1])
        out.append(row)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default="runs/crossfit")
    parser.add_argument("--before-cache-model", default="runs/before/models/latent-anomaly-t1")
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = Model.load(args.before_cache_model)  # its version names the scan cache; scorer identical to 1.5.0's
    records = json.loads((Path(args.work) / "records.json").read_text())
    threshold = records["voxel_threshold"]
    rows = [r for name in SETS for r in measure(model, name)]
    subject_rows, region_rows = [], []
    for c in SUBJECT_CANDIDATES:
        cal = np.array([r["subject"][c] for r in records["records"]])
        for alpha in ALPHAS:
            entry = {"subject statistic": c, "alpha": alpha}
            for name in SETS:
                sel = [r for r in rows if r["set"] == name]
                flagged = int(np.sum(p_values([r["subject"][c] for r in sel], cal) <= alpha))
                entry[name] = f"{flagged}/{len(sel)}"
            subject_rows.append(entry)
    for c in REGIONS:
        cal = np.array([max([region_statistic(g, c, threshold) for g in r["regions"]], default=0.0)
                        for r in records["records"]])
        for alpha in ALPHAS:
            entry = {"region statistic": c, "alpha": alpha}
            for name in SETS:
                sel = [r for r in rows if r["set"] == name]
                kept = [[g["id"] for g, p in zip(r["regions"], p_values(
                    [region_statistic(g, c, threshold) for g in r["regions"]], cal)) if p <= alpha]
                    if r["regions"] else [] for r in sel]
                if "truth" not in sel[0]:
                    entry[name] = f"{sum(bool(k) for k in kept)}/{len(sel)} scans"
                    continue
                found = [lesion_metrics(np.isin(r["ids"], k), r["truth"], r["spacing"]) for r, k in zip(sel, kept)]
                entry[name] = f"{sum(f['n_detected'] for f in found) / sum(f['n_lesions'] for f in found):.3f}"
            region_rows.append(entry)
    print(f"{machine()}\n\nscans flagged (p <= alpha), subject statistic against the 118 cross-fit scores\n")
    print(markdown_table(subject_rows, ["subject statistic", "alpha", *SETS]))
    print("\nhealthy: scans with a kept region; lesion sets: lesion-wise sensitivity of the kept regions\n")
    print(markdown_table(region_rows, ["region statistic", "alpha", *SETS]))


if __name__ == "__main__":
    main()
