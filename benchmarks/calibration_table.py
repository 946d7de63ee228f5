"""Subject flags and false-positive regions before (model 1.4.0 rules) and after (conformal p-values, 1.5.0).

    git archive 1a4a844 models/latent-anomaly-t1 | tar -x -C runs/before   # the 1.4.0 bundle
    nice -n 5 python benchmarks/calibration_table.py --before runs/before/models/latent-anomaly-t1 \\
        --after models/latent-anomaly-t1 [--compare OTHER_BUNDLE]

Healthy sets (IXI test split 30, other sites 5): subject flag rate, false-positive regions per scan and flagged
mL (median, max) of the default label map. Lesion sets (BraTS T1 14, MSLUB T1 3): subject sensitivity,
lesion-wise sensitivity (a ground-truth lesion component counts as detected when a label-map voxel touches
it, pooled over scans, inside the detector's brain mask as ``latent-anomaly evaluate`` does), the same counted
over the lesion components of at least 0.1 mL only (the product's smallest region; BraTS whole-tumour masks have
many fragments under it) and voxel Dice pooled over the scans. "before": the 1.4.0 bundle's threshold rules (subject score above the 95th percentile
of 20 validation scans; every region above the voxel threshold). "after": the ``--after`` bundle's p <= alpha for
the subject flag and for the regions kept in the label map, at alpha 0.05 and 0.01. Every scan is
preprocessed and encoded once per preprocessing configuration (runs/scan_cache/<model>/<set>-pre<its hash>):
bundles whose ``preprocess`` configuration is equal share one cache, and a bundle that treats skull-stripped inputs
otherwise (``preprocess.stripped_boundary``) gets its own; the encoder must be the same in all (checked by the
files' SHA256).
``--brats report`` keeps the 7 BraTS cases of splits/brats_t1_split.json's report half (docs/map-design.md: the
validation half chose; figures for issue 28 come from the report half only).
"""

from __future__ import annotations

import argparse
import hashlib
import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch
from cache_scans import cache_folder, set_cases
from common import machine

from LatentAnomalyLib.bundle.model import Model
from LatentAnomalyLib.case import Case
from LatentAnomalyLib.evaluation import datasets
from LatentAnomalyLib.evaluation.metrics import lesion_metrics
from LatentAnomalyLib.evaluation.outputs import markdown_table
from LatentAnomalyLib.pipeline import DetectOptions, Detector
from LatentAnomalyLib.training.scan_cache import cached

HEALTHY = ("ixi-test", "other-sites")
LESION = ("brats", "mslub")
# The product's smallest region (min_component_ml): lesion components under it are counted in a second column.
MIN_LESION_ML = 0.1
SHARED_FILES = ("encoder.safetensors", "latent_stats.safetensors", "brainmask.safetensors", "template_t1.nii.gz")


def preprocessing(model: Model) -> str:
    """What decides a scan's preprocessing in a bundle (its ``preprocess`` configuration), as a comparable key."""
    return json.dumps(asdict(model.preprocess), sort_keys=True, default=str)


def scan_cache(model: Model, name: str) -> Path:
    """The set's scan cache for the model's version and preprocessing: a bundle rewritten with other preprocessing
    settings under the same version must not read scans preprocessed the other way."""
    key = hashlib.sha256(preprocessing(model).encode()).hexdigest()[:8]
    return cache_folder(model, name).with_name(f"{name}-pre{key}")


def scan_rows(
    models: dict[str, tuple[Model, float | None]], name: str, cases: list[Case] | None = None
) -> list[dict]:
    """One row per scan and setting: flag, regions, flagged mL, and lesion counts against the ground truth."""
    encoders: dict[str, Detector] = {}
    for model, _ in models.values():
        if preprocessing(model) not in encoders:
            encoders[preprocessing(model)] = Detector(model, DetectOptions(device="cpu"))
    rows = []
    for case in set_cases(name) if cases is None else cases:
        scans = {key: cached(d, scan_cache(d.model, name), case.case_id, case.images["t1"]) for key, d in encoders.items()}
        truth = sitk.GetArrayFromImage(sitk.ReadImage(str(case.label))) > 0 if case.label else None
        for setting, (model, alpha) in models.items():
            scan = scans[preprocessing(model)]
            brain = scan.pre.native_mask
            options = DetectOptions(device="cpu", alpha=alpha or 0.05)
            result = Detector(model, options)._finish(scan.image, scan.pre, scan.encoded, model.default_scorer, {}, 0)
            s = result.summary
            row = {"set": name, "case": case.case_id, "setting": setting, "flagged": s["subject_flagged"],
                   "regions": s["n_components"], "ml": s["flagged_volume_ml"], "p": s.get("subject_p_value"),
                   "score": s["subject_score"], "peak": s.get("subject_region_peak")}
            if truth is not None:
                row.update(lesion_counts(result.labelmap, truth, brain))
            rows.append(row)
        print(f"{name} {case.case_id}", flush=True)
    return rows


def lesion_counts(labelmap: sitk.Image, truth: np.ndarray, brain: np.ndarray) -> dict[str, int]:
    """Lesion components (all, and those of at least 0.1 mL) and voxel counts of a label map against the ground
    truth, both inside the detector's brain mask."""
    pred = (sitk.GetArrayFromImage(labelmap) > 0) & brain
    spacing = tuple(labelmap.GetSpacing()[::-1])
    lesions = lesion_metrics(pred, truth & brain, spacing)
    large = lesion_metrics(pred, truth & brain, spacing, MIN_LESION_ML)
    return {"n_lesions": lesions["n_lesions"], "n_detected": lesions["n_detected"],
            "n_lesions_large": large["n_lesions"], "n_detected_large": large["n_detected"],
            "tp": int((pred & truth).sum()), "n_pred": int(pred.sum()), "n_true": int((truth & brain).sum())}


def print_tables(rows: list[dict]) -> None:
    """The healthy-set and lesion-set tables of :func:`table`."""
    healthy, lesion = table(rows)
    print(markdown_table(healthy, ["set", "setting", "scans", "flagged", "flag rate", "FP regions median",
                                   "FP regions max", "flagged mL median", "flagged mL max"]))
    print()
    print(markdown_table(lesion, ["set", "setting", "scans", "subject sensitivity", "lesion-wise sensitivity",
                                  "lesions >= 0.1 mL", "their sensitivity", "voxel Dice"]))


def table(rows: list[dict]) -> tuple[list[dict], list[dict]]:
    healthy, lesion = [], []
    for name in (*HEALTHY, *LESION):
        for setting in dict.fromkeys(r["setting"] for r in rows):
            sel = [r for r in rows if r["set"] == name and r["setting"] == setting]
            if not sel:
                continue
            flagged = sum(r["flagged"] for r in sel)
            base = {"set": name, "setting": setting, "scans": len(sel)}
            if name in HEALTHY:
                regions, ml = [r["regions"] for r in sel], [r["ml"] for r in sel]
                healthy.append({**base, "flagged": f"{flagged}/{len(sel)}", "flag rate": flagged / len(sel),
                                "FP regions median": float(np.median(regions)), "FP regions max": max(regions),
                                "flagged mL median": float(np.median(ml)), "flagged mL max": max(ml)})
            else:
                n_les = sum(r["n_lesions"] for r in sel)
                lesion.append({**base, "subject sensitivity": flagged / len(sel),
                               "lesion-wise sensitivity": sum(r["n_detected"] for r in sel) / n_les,
                               "lesions >= 0.1 mL": sum(r["n_lesions_large"] for r in sel),
                               "their sensitivity": sum(r["n_detected_large"] for r in sel)
                               / max(sum(r["n_lesions_large"] for r in sel), 1),
                               "voxel Dice": 2 * sum(r["tp"] for r in sel)
                               / max(sum(r["n_pred"] + r["n_true"] for r in sel), 1)})
    return healthy, lesion


def ranking(rows: list[dict]) -> list[dict]:
    """Subject AUROC, lesion scans against healthy scans, of the order scores.csv gives (``rank_rows``: by p-value,
    ties by largest region peak, then subject score; by subject score when the setting has no p-values)."""
    from LatentAnomalyLib.cohort.records import rank_rows
    from LatentAnomalyLib.evaluation.metrics import subject_metrics

    out = []
    for setting in dict.fromkeys(r["setting"] for r in rows):
        sel = [r for r in rows if r["setting"] == setting]
        table_rows = [{"case_id": f"{r['set']}/{r['case']}", "p_value": r["p"], "largest_region_peak": r.get("peak"),
                       "subject_score": r["score"], "row": i} for i, r in enumerate(sel)]
        order = [sel[t["row"]] for t in rank_rows(table_rows)]
        rank_score = {id(r): len(order) - i for i, r in enumerate(order)}  # higher = more anomalous
        lesion = [r["set"] in LESION for r in sel]
        m = subject_metrics([rank_score[id(r)] for r in sel], lesion)
        out.append({"setting": setting, "lesion scans": sum(lesion), "healthy scans": len(sel) - sum(lesion),
                    "subject AUROC": m.get("auroc"), "subject AP": m.get("average_precision")})
    return out


def brats_cases(which: str, name: str) -> list[Case] | None:
    """The BraTS cases of ``--brats report`` (None: every case of the set ``name``)."""
    if name != "brats" or which == "all":
        return None
    return datasets.brats_half("report")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="the model 1.4.0 bundle")
    parser.add_argument("--after", default="models/latent-anomaly-t1")
    parser.add_argument("--compare", action="append", default=[], help="another bundle, at alpha 0.05 (repeatable)")
    parser.add_argument("--out", default="runs/calibration_table.json")
    parser.add_argument("--brats", choices=("all", "report"), default="all", help="all 14 cases or the report half")
    args = parser.parse_args()
    torch.set_num_threads(1)
    before, after = Model.load(args.before), Model.load(args.after)
    others = [Model.load(path) for path in args.compare]
    for other in (before, *others):
        for file in SHARED_FILES:
            if other.bundle.manifest["files"][file] != after.bundle.manifest["files"][file]:
                raise SystemExit(f"{file} differs between the bundles: the scan cache cannot be shared")
    models = {
        f"before ({before.version} thresholds)": (before, None),
        **{f"{other.version}, alpha 0.05": (other, 0.05) for other in others},
        f"after ({after.version}, alpha 0.05)": (after, 0.05),
        f"after ({after.version}, alpha 0.01)": (after, 0.01),
    }
    rows = [r for name in (*HEALTHY, *LESION) for r in scan_rows(models, name, brats_cases(args.brats, name))]
    Path(args.out).write_text(json.dumps(rows, indent=1, default=float))
    print(f"\n{machine()}\n")
    print_tables(rows)
    print()
    print(markdown_table(ranking(rows), ["setting", "lesion scans", "healthy scans", "subject AUROC", "subject AP"]))


if __name__ == "__main__":
    main()
