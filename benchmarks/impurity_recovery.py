"""What outlier removal gives back of the map that impure training data costs, with the encoder held fixed.

The issue-26 study retrains an encoder per impurity level (about 13 h each on this CPU); this one measures the part
of the cost that lies in the scorers, which `latent-anomaly train` fits on every scan it keeps: the bundled model's
encoder, and its default scorer (latent and atlas parts) refitted on a training set of the first 51 IXI train
scans (split order, `splits/ixi_t1_split.json`) plus 0, 2, 3 or 7 BraTS T1 scans of the validation half
(`splits/brats_t1_split.json`, in its order: 0%, 3.8%, 5.6%, 12.1%). For each set: the outliers stage's decision
(default scorer cross-fitted in 5 folds over the set, largest region peak, robust z > 3.5,
:mod:`LatentAnomalyLib.training.latent_outliers`), then the scorer fitted on the whole set ("impure") and on the
set less the removed scans ("cleaned"). Each is evaluated on scans no set contains: the BraTS report half and the
3 MSLUB patients (voxel AUROC / AUPRC / best Dice pooled over the detector's brain mask, as `evaluate` pools), and
the subject AUROC of those 10 lesion scans against the 30 IXI test scans (each scan's largest region peak at the
bundle's voxel threshold, the statistic of the shipped p-values). Recovery at a level = (cleaned - impure) /
(clean - impure) of the BraTS AUPRC, clean being the 0% set.

    python benchmarks/impurity_recovery.py [--cache runs/impurity_recovery]
    python benchmarks/impurity_recovery.py --table     # the table again, from <cache>/results.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine, require_data
from LatentAnomalyLib import DEFAULT_SEED
from LatentAnomalyLib.bundle.model import Model
from LatentAnomalyLib.evaluation import datasets
from LatentAnomalyLib.evaluation import metrics as M
from LatentAnomalyLib.pipeline import DetectOptions, Detector
from LatentAnomalyLib.training.crossfit import crossfit_scans, fit_named
from LatentAnomalyLib.training.latent_outliers import DEFAULT_Z, decide, largest_region_peaks
from LatentAnomalyLib.training.scan_cache import CachedScan, cached

LEVELS = (0, 2, 3, 7)
N_HEALTHY = 51
SPLIT = Path(__file__).resolve().parents[1] / "splits" / "brats_t1_split.json"


def evaluate(model: Model, name: str, scorer, scans: dict[str, CachedScan], truth: dict[str, np.ndarray | None]):
    """Pooled voxel metrics per lesion set and the subject AUROC, for ``scorer`` in place of the bundle's."""
    fitted = dataclasses.replace(model, scorers={**model.scorers, name: scorer})
    detector = Detector(fitted, DetectOptions(scorer=name, device="cpu", regions="all"))
    detector._sets[name] = None  # the raw regions, whatever calibration the bundle holds
    pools: dict[str, tuple[list, list]] = {"brats": ([], []), "mslub": ([], [])}
    subject: list[tuple[float, bool]] = []
    for case_id, scan in scans.items():
        result = detector._finish(scan.image, scan.pre, scan.encoded, name, {}, 0.0)
        peak = max((float(c["peak_score"]) for c in result.summary["components"]), default=0.0)
        labels = truth[case_id]
        subject.append((peak, labels is not None))
        if labels is not None:
            brain = result.preprocessed.native_mask
            pool = pools["mslub" if case_id.startswith("mslub-") else "brats"]
            pool[0].append(sitk.GetArrayFromImage(result.heatmap)[brain].astype(np.float32))
            pool[1].append(labels[brain])
    out = {}
    for key, (heat, labels) in pools.items():
        voxel = M.voxel_metrics(np.concatenate(heat), np.concatenate(labels))
        out[key] = {k: voxel[k] for k in ("auroc", "auprc", "best_dice")}
    out["subject_auroc"] = M.subject_metrics([s for s, _ in subject], [y for _, y in subject])["auroc"]
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", default="runs/impurity_recovery", help="encoded scans and fold work files")
    parser.add_argument("--table", action="store_true", help="only: the table of <cache>/results.json")
    args = parser.parse_args()
    work = Path(args.cache)
    if args.table:
        print(table(json.loads((work / "results.json").read_text())))
        return 0
    require_data()
    model = Model.load()
    name = model.default_scorer
    detector = Detector(model, DetectOptions(scorer=name, device="cpu"))
    split = json.loads(SPLIT.read_text())
    brats = {c.case_id: c for c in datasets.brats_cases()}
    mslub = datasets.mslub_cases()
    t = time.time()

    def encode(case_id: str, path: Path) -> CachedScan:
        return cached(detector, work / "scans", case_id, path)

    healthy = [encode(c.case_id, c.images["t1"]) for c in datasets.ixi_cases("train")[:N_HEALTHY]]
    pool = [encode(i, brats[i].images["t1"]) for i in split["validation"]]
    held: dict[str, CachedScan] = {}
    truth: dict[str, np.ndarray | None] = {}
    for case in [brats[i] for i in split["report"]] + mslub + datasets.ixi_cases("test"):
        held[case.case_id] = encode(case.case_id, case.images["t1"])
        truth[case.case_id] = (
            None if case.label is None else sitk.GetArrayFromImage(sitk.ReadImage(str(case.label))) > 0
        )
    print(
        f"# {machine()}; {len(healthy)} healthy + {len(pool)} injectable + {len(held)} evaluation scans encoded "
        f"in {time.time() - t:.0f}s; scorer {name}",
        flush=True,
    )
    results = {}
    for n in LEVELS:
        t = time.time()
        members = healthy + pool[:n]
        records = crossfit_scans(
            model, name, [("train", s) for s in members], work / f"inject{n}", 5, DEFAULT_SEED, log=lambda s: None
        )
        removed = set(decide(largest_region_peaks(records), DEFAULT_Z)["removed"])
        injected = {s.case_id for s in pool[:n]}
        row = {
            "injected": n,
            "share": n / len(members),
            "injected_removed": len(injected & removed),
            "healthy_removed": len(removed - injected),
            "removed": sorted(removed),
        }
        for variant, scans in (("impure", members), ("cleaned", [s for s in members if s.case_id not in removed])):
            if variant == "cleaned" and not removed:
                row[variant] = row["impure"]
                continue
            row[variant] = evaluate(model, name, fit_named(model, name, [s.encoded for s in scans]), held, truth)
        results[str(n)] = row
        (work / "results.json").write_text(json.dumps(results, indent=1))
        print(f"level {n}: {time.time() - t:.0f}s {json.dumps({k: row[k] for k in row if k != 'removed'})}", flush=True)
    print(table(results))
    return 0


def table(results: dict) -> str:
    clean = results["0"]["impure"]["brats"]["auprc"]
    lines = [
        "| injected | share | injected removed | healthy removed | BraTS AUPRC impure | cleaned | recovered | "
        "MSLUB AUPRC impure | cleaned | subject AUROC impure | cleaned |",
        "|" + "---|" * 11,
    ]
    for row in results.values():
        imp, cln = row["impure"], row["cleaned"]
        cost = clean - imp["brats"]["auprc"]
        # a share of the cost only where impurity lowered the AUPRC; otherwise there was nothing to recover
        recovered = f"{(cln['brats']['auprc'] - imp['brats']['auprc']) / cost:.2f}" if cost > 1e-9 else "-"
        lines.append(
            f"| {row['injected']} | {100 * row['share']:.1f}% | {row['injected_removed']}/{row['injected']} | "
            f"{row['healthy_removed']}/{N_HEALTHY} | {imp['brats']['auprc']:.3f} | {cln['brats']['auprc']:.3f} | "
            f"{recovered} | {imp['mslub']['auprc']:.3f} | {cln['mslub']['auprc']:.3f} | "
            f"{imp['subject_auroc']:.3f} | {cln['subject_auroc']:.3f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
