"""Regenerate the whole comparison from ../shared/data and print markdown tables.

    python benchmarks/run_benchmark.py [--out results/benchmark] [--model models/latent-anomaly-t1]
    python benchmarks/run_benchmark.py --brats report --sets brats-t1,mslub   # issue 28's reported scans only

Quality per method and dataset (BraTS 2018 T1/T2/FLAIR, MSLUB, IXI test split, other-site healthy
scans), the same evaluation code as `latent-anomaly evaluate`, and the time per scan by stage.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from common import machine, require_data
from speed_memory import STAGE_COLUMNS, run_once

from LatentAnomalyLib.bundle.model import Model
from LatentAnomalyLib.evaluation.datasets import brats_cases, brats_half, ixi_cases, mslub_cases, other_site_cases
from LatentAnomalyLib.evaluation.outputs import SUMMARY_COLUMNS, markdown_table, write_outputs
from LatentAnomalyLib.evaluation.run import Method, evaluate_cases
from LatentAnomalyLib.score.registry import BASELINE_SCORERS, COMBINED_SCORERS, LATENT_SCORERS

SPEED_SCAN = "brats2018/Brats18_CBICA_ABM_1/Brats18_CBICA_ABM_1_t1.nii.gz"
MODEL_SCORERS = (*LATENT_SCORERS, *BASELINE_SCORERS, *COMBINED_SCORERS)
# The voxel and lesion columns of the evaluation summary (subject and timing columns get their own tables).
QUALITY = tuple(
    c
    for c in SUMMARY_COLUMNS
    if c not in ("cases", "healthy_flagged_median") and not c.startswith(("subject", "seconds"))
)


def bundle_scorers(model: Model) -> list[str]:
    """Every scorer of :data:`MODEL_SCORERS` the bundle has (a combined scorer only from model 1.7.0), and its default
    scorer when that is none of them (a location-normalised map, model 1.10.0 on)."""
    names = [s for s in MODEL_SCORERS if s in model.scorers]
    return names + ([model.default_scorer] if model.default_scorer not in names else [])


def model_methods(model: Model, extra: tuple[Method, ...] = ()) -> list[Method]:
    """A method per :func:`bundle_scorers` name, then ``extra``."""
    return [Method(f"model:{s}", "model", (s,)) for s in bundle_scorers(model)] + list(extra)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="results/benchmark")
    parser.add_argument("--model")
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--brats",
        choices=("all", "report", "validation"),
        default="all",
        help="all 14 BraTS cases, or the report or validation half of splits/brats_t1_split.json (docs/map-design.md; "
        "only the validation half may choose)",
    )
    parser.add_argument("--sets", help="comma-separated subset of the sets (the subject and speed tables need all)")
    args = parser.parse_args()
    root = require_data()
    out = Path(args.out)
    model = Model.load(args.model)
    t1_plain = (
        Method("intensity:t1:abs", "intensity", ("t1", "abs")),
        Method("intensity:t1:low", "intensity", ("t1", "low")),
    )
    brats = brats_cases(root) if args.brats == "all" else brats_half(args.brats, root)
    runs = {
        "brats-t1": (brats, model_methods(model, t1_plain)),
        "brats-flair-t2": (
            brats,
            [
                Method("intensity:flair:high", "intensity", ("flair", "high")),
                Method("intensity:t2:high", "intensity", ("t2", "high")),
            ],
        ),
        "mslub": (
            mslub_cases(root),
            model_methods(model, (Method("intensity:flair:high", "intensity", ("flair", "high")),)),
        ),
        "ixi-test": (ixi_cases("test", root), model_methods(model)),  # DLMUSE brain labels as brain masks
        "other-sites": (other_site_cases(root), model_methods(model)),
    }
    if args.sets:
        unknown = set(args.sets.split(",")) - set(runs)
        if unknown:
            parser.error(f"unknown set(s) {', '.join(sorted(unknown))}; known: {', '.join(runs)}")
        runs = {k: v for k, v in runs.items() if k in args.sets.split(",")}
    results, timings = {}, {}
    for name, (cases, methods) in runs.items():
        t0 = time.time()
        result = evaluate_cases(
            cases,
            methods,
            model if any(m.kind == "model" for m in methods) else None,
            args.device,
            montages=name.startswith(("brats-t1", "mslub")),
            log=lambda s: None,
        )
        write_outputs(result, out / name, f"Benchmark: {name}", report=name.startswith(("brats-t1", "mslub")))
        results[name] = result
        timings[name] = time.time() - t0
        print(f"{name}: {len(cases)} cases in {timings[name]:.0f}s", flush=True)

    print(f"\n## Quality (measured {machine()})\n")
    for name in (n for n in ("brats-t1", "brats-flair-t2", "mslub") if n in results):
        print(f"### {name}\n\n{markdown_table(results[name]['summaries'], QUALITY)}\n")
    if args.sets:  # the tables below pool every set
        summaries = {k: v["summaries"] for k, v in results.items()}
        (out / "summary.json").write_text(
            json.dumps({"machine": machine(), "summaries": summaries}, indent=1, default=float)
        )
        return
    print("### Healthy scans: flagged fraction of the brain at the calibrated threshold (median over scans)\n")
    healthy_rows = []
    for name in ("ixi-test", "other-sites"):
        for s in results[name]["summaries"]:
            per_scan = [r["flagged_fraction"] for r in results[name]["rows"] if r["method"] == s["method"]]
            healthy_rows.append(
                {
                    "dataset": name,
                    "method": s["method"],
                    "median": float(np.median(per_scan)),
                    "max": float(np.max(per_scan)),
                    "scans": len(per_scan),
                }
            )
    print(markdown_table(healthy_rows, ("dataset", "method", "median", "max", "scans")) + "\n")
    print("### Subject level: lesion scans (BraTS T1, MSLUB T1) against healthy scans (IXI test, other sites)\n")
    subject_rows = []
    from LatentAnomalyLib.evaluation.metrics import subject_metrics

    for scorer in bundle_scorers(model):
        method = f"model:{scorer}"
        scores, lesion = [], []
        for name, is_lesion in (("brats-t1", True), ("mslub", True), ("ixi-test", False), ("other-sites", False)):
            for r in results[name]["rows"]:
                if r["method"] == method:
                    scores.append(r["subject_score"])
                    lesion.append(is_lesion)
        m = subject_metrics(scores, lesion)
        subject_rows.append(
            {
                "method": method,
                "auroc": m["auroc"],
                "ap": m["average_precision"],
                "lesion scans": m["n_lesion"],
                "healthy scans": m["n_healthy"],
            }
        )
    print(markdown_table(subject_rows, ("method", "auroc", "ap", "lesion scans", "healthy scans")) + "\n")
    print(
        "### Seconds per scan per method (in-process, inside the evaluation; model scorers share one preprocessing)\n"
    )
    speed_rows = [
        {"dataset": name, "method": s["method"], "seconds per scan": s["seconds_per_case"]}
        for name in ("brats-t1", "brats-flair-t2")
        for s in results[name]["summaries"]
    ]
    print(markdown_table(speed_rows, ("dataset", "method", "seconds per scan")) + "\n")
    print(
        f"### Whole `latent-anomaly detect` per scorer on {SPEED_SCAN} (one run each): seconds by stage, peak memory\n"
    )
    stage_rows = []
    for scorer in bundle_scorers(model):
        stage_rows.append({"scorer": scorer, **run_once(root / SPEED_SCAN, args.device, ["--scorer", scorer])})
    print(markdown_table(stage_rows, STAGE_COLUMNS) + "\n")
    (out / "summary.json").write_text(
        json.dumps(
            {
                "machine": machine(),
                "timings_s": timings,
                "summaries": {k: v["summaries"] for k, v in results.items()},
                "healthy": healthy_rows,
                "subject": subject_rows,
                "speed": speed_rows,
                "detect_stages": stage_rows,
            },
            indent=1,
            default=float,
        )
    )


if __name__ == "__main__":
    main()
