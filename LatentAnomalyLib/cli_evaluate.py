"""CLI subcommands for cohorts: `batch` (detect on many scans) and `evaluate` (metrics and report)."""

from __future__ import annotations

import argparse
import sys


def add_batch(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "batch",
        help="detect anomalies in many scans",
        description="Detect anomalies in many scans; one output folder per scan and a cohort table.",
    )
    p.add_argument("inputs", nargs="*", help="scan files or DICOM folders")
    p.add_argument(
        "--list", help="CSV with a column 'path' (and optionally 'case_id'), or a text file with one path per line"
    )
    p.add_argument("--out", required=True, help="output folder: <out>/<case_id>/ and <out>/cohort.csv")
    p.add_argument("--model", help="model bundle folder (default: the bundled T1 model)")
    p.add_argument("--scorer")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--skull", default="auto", choices=("auto", "stripped", "skull"))
    p.add_argument("--threshold", type=float)
    p.add_argument("--shard", default="1/1", help="process the i-th of n interleaved shares of the list, e.g. 2/4")
    p.add_argument("--no-resume", action="store_true", help="redo cases whose outputs exist")
    p.add_argument("--progress", default="auto", choices=("auto", "bar", "lines", "none"))


def cmd_batch(args: argparse.Namespace) -> int:
    from .cohort import run_batch

    report = run_batch(args)
    print(
        f"{report['done']} done, {report['skipped']} already done, {report['failed']} failed; table: {report['table']}"
    )
    for failure in report["failures"]:
        print(f"failed: {failure}", file=sys.stderr)
    return 0 if report["failed"] == 0 else 3


def add_evaluate(sub: argparse._SubParsersAction) -> None:
    from .evaluate_cli import add_evaluate_parser

    add_evaluate_parser(sub)


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from .evaluate_cli import cmd_evaluate

    return cmd_evaluate(args)


COMMANDS = {"batch": cmd_batch, "evaluate": _cmd_evaluate}
