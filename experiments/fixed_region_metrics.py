"""Report only: voxel metrics of two bundles over one fixed region, the input's own brain mask, for both.

Why: ``latent-anomaly evaluate`` and ``benchmarks/run_benchmark.py`` score voxels inside the detector's brain mask.
Model 1.9.0's band mask makes that mask smaller on skull-stripped inputs (about 10% of a BraTS brain), so its
figures and 1.8.0's are over different voxels, and tumour tissue the band takes out is no longer counted as missed.
Here every bundle is scored over the same voxels: the input's non-zero voxels (the site's mask), with the heatmap
as ``detect`` writes it (0 outside the detector's mask, ranked below every scored voxel here), so tumour the band
removes counts as missed.

    nice -n 5 python experiments/fixed_region_metrics.py --model runs/bundle-1.8.0 --model models/latent-anomaly-t1

Sets: the BraTS report half (splits/brats_t1_split.json) and the 3 MSLUB patients, T1.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from LatentAnomalyLib.bundle.model import Model
from LatentAnomalyLib.evaluation.datasets import brats_half, mslub_cases
from LatentAnomalyLib.evaluation.metrics import voxel_metrics
from LatentAnomalyLib.io.read import read_image
from LatentAnomalyLib.pipeline import DetectOptions, Detector
from LatentAnomalyLib.preprocess.brainmask import stripped_mask


def case_arrays(detector: Detector, t1: Path, label: Path) -> tuple[np.ndarray, np.ndarray, float]:
    """Heat and truth over the input's own mask, and the tumour millilitres the detector's map does not score."""
    image = read_image(t1)
    result = detector.detect(image)
    heat = sitk.GetArrayFromImage(result.heatmap).astype(np.float32)
    site = sitk.GetArrayFromImage(stripped_mask(image)) > 0
    truth = sitk.GetArrayFromImage(sitk.ReadImage(str(label))) > 0
    outside = int((truth & site & (heat == 0)).sum()) * float(np.prod(image.GetSpacing())) / 1000.0
    inside = heat[site]
    inside[inside == 0] = np.nan  # not scored: ranked below every scored voxel of every case when pooled
    return inside, truth[site], outside


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", required=True)
    parser.add_argument("--out", default="runs/fixed_region_metrics.json")
    args = parser.parse_args()
    sets = {"brats-report": brats_half("report"), "mslub": mslub_cases()}
    results = {}
    print("| model | set | auroc | auprc | best_dice | lesion voxels with heat 0 (mL) |")
    print("|---|---|---|---|---|---|")
    for path in args.model:
        model = Model.load(path)
        detector = Detector(model, DetectOptions(device="cpu"))
        for name, cases in sets.items():
            heats, truths, outside_ml = [], [], {}
            for case in cases:
                heat, truth, outside = case_arrays(detector, case.images["t1"], case.label)
                heats.append(heat)
                truths.append(truth)
                outside_ml[case.case_id] = outside
            pooled = np.concatenate(heats)
            pooled[np.isnan(pooled)] = np.nanmin(pooled) - 1.0
            m = voxel_metrics(pooled, np.concatenate(truths))
            results[f"{model.version}/{name}"] = {**m, "lesion_ml_with_zero_heat": outside_ml}
            biggest = max(outside_ml.items(), key=lambda kv: kv[1])
            print(f"| {model.version} | {name} | {m['auroc']:.3f} | {m['auprc']:.3f} | {m['best_dice']:.3f} | "
                  f"{sum(outside_ml.values()):.1f} (most: {biggest[0]} {biggest[1]:.1f}) |", flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=1, default=float))


if __name__ == "__main__":
    main()
