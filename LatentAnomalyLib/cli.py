"""The `latent-anomaly` command: argument parsing, progress display and error reporting only.

Every subcommand calls the library; user errors (bad input, bad bundle, bad option) end with one
line on stderr and exit code 2, never a traceback (``--debug`` shows it).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from . import __version__
from .cli_options import add_conformal_options, subject_text

EXIT_USER_ERROR = 2
EXIT_INTERNAL_ERROR = 1


class UsageError(ValueError):
    """A problem with the command line itself."""


def _add_detect(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "detect", help="detect anomalies in one scan", description="Detect anomalies in one T1-weighted brain MRI."
    )
    p.add_argument("input", help="NIfTI, NRRD, MHA file or a DICOM series folder")
    p.add_argument("--out", required=True, help="output folder (heatmap.nii.gz, labelmap.nii.gz, summary.json)")
    p.add_argument("--model", help="model bundle folder (default: the bundled T1 model)")
    p.add_argument("--scorer", help="scorer in the bundle (default: the bundle's default)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument(
        "--skull",
        default="auto",
        choices=("auto", "stripped", "skull"),
        help="whether the scan is skull-stripped (auto: decided from the scan)",
    )
    p.add_argument("--threshold", type=float, help="override the calibrated voxel threshold (implies --regions all)")
    add_conformal_options(p)
    p.add_argument("--format", default="nii.gz", choices=("nii.gz", "nrrd", "mha"), help="output image format")
    p.add_argument("--progress", default="auto", choices=("auto", "bar", "lines", "none"))
    p.add_argument("--series", help="DICOM SeriesInstanceUID to use when the input folder holds several series")
    p.add_argument("--overwrite", action="store_true", help="replace results already in --out")
    p.add_argument(
        "--dicom-seg",
        action="store_true",
        help="DICOM series input: also write the label map as a DICOM SEG, labelmap.seg.dcm (needs the dicom extra)",
    )


def _add_info(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "info", help="describe a model bundle", description="Describe a model bundle and check its checksums."
    )
    p.add_argument("--model", help="model bundle folder (default: the bundled T1 model)")
    p.add_argument("--json", action="store_true", help="print JSON")


def _add_review(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "review",
        help="review results in a web browser",
        description="Serve a detect or batch output folder as a review page (needs the review extra).",
    )
    p.add_argument("results", help="a detect output folder or a batch output folder (with scores.csv)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)")
    p.add_argument("--port", type=int, default=0, help="port to listen on (default: 0, a free port)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="latent-anomaly", description="Unsupervised anomaly detection in brain MRI.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_detect(sub)
    _add_info(sub)
    from .cli_evaluate import add_batch, add_evaluate
    from .cli_train import add_train

    add_train(sub)

    add_evaluate(sub)
    add_batch(sub)
    _add_review(sub)
    return parser


def cmd_detect(args: argparse.Namespace) -> int:
    from .detect_io import detect_file, output_folder

    with output_folder(args.out, overwrite=args.overwrite, inputs=(args.input,)) as staging:
        summary = detect_file(
            args.input,
            staging,
            final_dir=args.out,
            model_path=args.model,
            scorer=args.scorer,
            device=args.device,
            skull=args.skull,
            threshold=args.threshold,
            image_format=args.format,
            progress=args.progress,
            series=args.series,
            dicom_seg=args.dicom_seg,
            alpha=args.alpha,
            regions=args.regions,
        )
    flagged = summary["flagged_volume_ml"]
    print(
        f"{summary['model']['name']} {summary['model']['version']} ({summary['model']['scorer']}): "
        f"{summary['n_components']} flagged region(s), {flagged:.1f} mL "
        f"({100 * summary['flagged_fraction_of_brain']:.2f}% of brain); {subject_text(summary)}; "
        f"outputs in {Path(args.out)}"
    )
    warnings = summary.get("warnings", [])
    for message in summary.get("messages", []):
        if message not in warnings:
            print(f"note: {message}", file=sys.stderr)
    for message in warnings:
        print(f"warning: {message}", file=sys.stderr)
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from .model_info import describe

    info = describe(args.model)
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        print(info["text"])
    return 0


def cmd_review(args: argparse.Namespace) -> int:
    import importlib.util

    from LatentAnomalyReview import INSTALL_HINT, REQUIRED_MODULES

    if any(importlib.util.find_spec(name) is None for name in REQUIRED_MODULES):
        raise UsageError(INSTALL_HINT)
    from LatentAnomalyReview.results import load_results

    results = load_results(args.results)  # a missing or malformed folder fails here, before any server starts
    from LatentAnomalyReview.server import serve

    return serve(results, host=args.host, port=args.port)


def command(name: str) -> Callable[[argparse.Namespace], int]:
    """The function of subcommand ``name``; the train, evaluate and batch modules are imported only when used."""
    if name == "train":
        from .cli_train import cmd_train

        return cmd_train
    if name in ("evaluate", "batch"):
        from .cli_evaluate import COMMANDS as EVALUATION_COMMANDS

        return EVALUATION_COMMANDS[name]
    return {"detect": cmd_detect, "info": cmd_info, "review": cmd_review}[name]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from .bundle import BundleError
    from .errors import InputError
    from .normalize import NormalisationError

    try:
        return command(args.command)(args)
    except (InputError, BundleError, NormalisationError, UsageError, FileNotFoundError) as error:
        if args.debug:
            raise
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # the last line of defence: one line, never a traceback
        if args.debug:
            raise
        print(
            f"error: unexpected failure ({type(error).__name__}: {error}); rerun with --debug for details",
            file=sys.stderr,
        )
        return EXIT_INTERNAL_ERROR


if __name__ == "__main__":
    sys.exit(main())
