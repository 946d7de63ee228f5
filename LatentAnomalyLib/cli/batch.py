"""`latent-anomaly batch`: detection on many scans; options -> :class:`BatchOptions` -> the library."""

from __future__ import annotations

import argparse
import sys

from .options import DEVICES, PROGRESS_MODES, SKULL_MODES, add_conformal_options, threshold_value

EXIT_SOME_FAILED = 3


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "batch",
        help="detect anomalies in many scans",
        description=(
            "Detect anomalies in many scans and rank them in <out>/scores.csv by subject p-value (smallest first; "
            "ties by largest region peak, then subject score; by subject score for bundles without p-values). "
            "INPUT is a folder of scans (NIfTI, NRRD, MHA files, or one DICOM series per sub-folder), "
            "a CSV with a 'path' column (optional 'case_id'), a text file of paths, or scan paths. "
            "Interrupted runs resume: finished cases are skipped. --scheduler runs the scans on a Dask cluster "
            "(docs/cluster.md). Exit code 3 if any scan failed."
        ),
    )
    p.add_argument("inputs", nargs="*", metavar="INPUT", help="folder of scans, CSV/text list, or scan paths")
    p.add_argument("--list", help="a CSV or text list of scans (same as giving it as INPUT)")
    p.add_argument("--out", required=True, help="output folder: scores.csv, scores.json and <out>/<case_id>/")
    p.add_argument(
        "--export",
        default="flagged",
        choices=("flagged", "all", "none"),
        help="whose heatmap, label map and summary to keep in <out>/<case_id>/ (default: flagged scans)",
    )
    p.add_argument(
        "--dicom-seg",
        action="store_true",
        help="DICOM series cases: also write labelmap.seg.dcm (DICOM SEG) in their exported folders (dicom extra)",
    )
    p.add_argument("--workers", type=int, default=1, help="cases in parallel on this machine (processes)")
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="CPU threads per case: torch, BLAS and ITK (default 1); results are bit-identical for any --workers at the same --threads",
    )
    p.add_argument("--model", help="model bundle folder (default: the bundled T1 model)")
    p.add_argument("--scorer")
    p.add_argument("--device", default="auto", choices=DEVICES)
    p.add_argument("--skull", default="auto", choices=SKULL_MODES)
    p.add_argument("--threshold", type=threshold_value, help="override the calibrated voxel threshold (implies --regions all)")
    add_conformal_options(p)
    p.add_argument("--shard", default="1/1", help="process the i-th of n interleaved shares of the list, e.g. 2/4")
    p.add_argument(
        "--scheduler",
        metavar="ADDRESS|local:N",
        help="run the scans on a Dask cluster: a scheduler address (tcp://host:8786) whose workers all see --out "
        "and the scans, or local:N for a local cluster of N workers (cluster extra; docs/cluster.md)",
    )
    p.add_argument("--no-resume", action="store_true", help="redo cases an earlier run finished")
    p.add_argument("--progress", default="auto", choices=PROGRESS_MODES)


def run(args: argparse.Namespace) -> int:
    from ..cohort.batch import BatchOptions, run_batch

    options = BatchOptions(
        inputs=tuple(args.inputs),
        out=args.out,
        list_file=args.list,
        export=args.export,
        dicom_seg=args.dicom_seg,
        workers=args.workers,
        threads=args.threads,
        model=args.model,
        scorer=args.scorer,
        device=args.device,
        skull=args.skull,
        threshold=args.threshold,
        alpha=args.alpha,
        regions=args.regions,
        shard=args.shard,
        scheduler=args.scheduler,
        resume=not args.no_resume,
        progress=args.progress,
    )
    report = run_batch(options)
    done = f"{report['done']} done, {report['skipped']} already done, {report['failed']} failed"
    print(f"{done}; {report['flagged']} flagged; table: {report['table']}")
    for warning in report["warnings"]:
        print(f"warning: {warning}", file=sys.stderr)
    for failure in report["failures"]:
        print(f"failed: {failure}", file=sys.stderr)
    return 0 if report["failed"] == 0 else EXIT_SOME_FAILED
