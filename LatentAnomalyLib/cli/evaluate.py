"""`latent-anomaly evaluate`: heatmaps against ground truth; options -> :class:`EvaluationOptions` -> the library."""

from __future__ import annotations

import argparse

from .options import DEVICES


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help="compare heatmaps with ground-truth masks",
        description="Per-case and pooled voxel, lesion and subject metrics, tables and an HTML report.",
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--cases", help="CSV: case_id, one column per sequence (t1, t2, flair), label (optional), healthy (optional)"
    )
    source.add_argument("--brats", help="folder laid out like BraTS (<case>/<case>_{t1,t2,flair,seg}.nii.gz)")
    p.add_argument("--out", required=True, help="report folder (metrics.csv, metrics.json, report.html)")
    p.add_argument("--model", help="model bundle (default: the bundled T1 model)")
    p.add_argument(
        "--methods",
        default="model",
        help="comma-separated: model (the bundle's default scorer), model:<scorer>, intensity:<sequence>[:low|high|abs], "
        "atlas (the bundle's voxel-wise atlas z-score against the registered healthy training scans)",
    )
    p.add_argument("--heatmaps", help="folder of heatmaps computed elsewhere: <case_id>.nii.gz on each case's grid")
    p.add_argument("--sequence", default="t1", help="sequence the model reads (default t1)")
    p.add_argument("--device", default="auto", choices=DEVICES)
    p.add_argument("--max-cases", type=int, help="evaluate only the first N cases")
    p.add_argument("--no-report", action="store_true", help="skip report.html (tables only)")
    p.add_argument(
        "--min-lesion-ml",
        type=float,
        default=0.0,
        help="lesion-wise metrics count ground-truth components of at least this volume in mL (default 0: all; "
        "the detector's smallest region is 0.1 mL)",
    )


def run(args: argparse.Namespace) -> int:
    from ..evaluation.run import EvaluationOptions, run_evaluation

    options = EvaluationOptions(
        out=args.out,
        cases_csv=args.cases,
        brats=args.brats,
        model=args.model,
        methods=args.methods,
        heatmaps=args.heatmaps,
        sequence=args.sequence,
        device=args.device,
        max_cases=args.max_cases,
        report=not args.no_report,
        min_lesion_ml=args.min_lesion_ml,
    )
    print(run_evaluation(options)["text"])
    return 0
