"""CLI subcommands for cohorts: `batch` (detect on many scans) and `evaluate` (metrics and report)."""

from __future__ import annotations

import argparse
import sys

EXIT_SOME_FAILED = 3


def add_batch(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "batch",
        help="detect anomalies in many scans",
        description=(
            "Detect anomalies in many scans and rank them by subject-level score in <out>/scores.csv. "
            "INPUT is a folder of scans (NIfTI, NRRD, MHA files, or one DICOM series per sub-folder), "
            "a CSV with a 'path' column (optional 'case_id'), a text file of paths, or scan paths. "
            "Interrupted runs resume: finished cases are skipped. Under torchrun each rank takes its "
            "share and rank 0 writes the merged table. Exit code 3 if any scan failed."
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
        help="torch threads per case (default 1); results are bit-identical for any --workers at the same --threads",
    )
    p.add_argument("--model", help="model bundle folder (default: the bundled T1 model)")
    p.add_argument("--scorer")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--skull", default="auto", choices=("auto", "stripped", "skull"))
    p.add_argument("--threshold", type=float, help="override the calibrated voxel threshold (implies --regions all)")
    from .cli_options import add_conformal_options

    add_conformal_options(p)
    p.add_argument("--shard", default="1/1", help="process the i-th of n interleaved shares of the list, e.g. 2/4")
    p.add_argument(
        "--shard-timeout",
        type=float,
        default=24 * 3600.0,
        help="under torchrun: seconds rank 0 waits for the other ranks' results (default: 24 h)",
    )
    p.add_argument("--no-resume", action="store_true", help="redo cases an earlier run finished")
    p.add_argument("--progress", default="auto", choices=("auto", "bar", "lines", "none"))


def cmd_batch(args: argparse.Namespace) -> int:
    from .cohort import run_batch

    report = run_batch(args)
    done = f"{report['done']} done, {report['skipped']} already done, {report['failed']} failed"
    print(f"{done}; {report['flagged']} flagged; table: {report['table']}")
    for warning in report["warnings"]:
        print(f"warning: {warning}", file=sys.stderr)
    for failure in report["failures"]:
        print(f"failed: {failure}", file=sys.stderr)
    return 0 if report["failed"] == 0 else EXIT_SOME_FAILED


def add_evaluate(sub: argparse._SubParsersAction) -> None:
    from .evaluate_cli import add_evaluate_parser

    add_evaluate_parser(sub)


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from .evaluate_cli import cmd_evaluate

    return cmd_evaluate(args)


COMMANDS = {"batch": cmd_batch, "evaluate": _cmd_evaluate}
