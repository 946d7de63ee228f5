"""The `latent-anomaly` command: argument parsing, progress display and error reporting only.

Every subcommand calls the library; user errors (bad input, bad bundle, bad option) end with one
line on stderr and exit code 2, never a traceback (``--debug`` shows it).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from . import __version__
from .cli_options import add_conformal_options, subject_text

REPO_ROOT = Path(__file__).resolve().parents[1]  # relative --config paths also resolve here

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


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a model bundle on healthy scans",
        description="Train a model bundle from a configuration file, on the IXI split of the research data or "
        "on your own healthy scans (--scans).",
    )
    p.add_argument(
        "--config", default="configs/default_t1.json", help="training configuration (JSON; default: %(default)s)"
    )
    p.add_argument("--out", required=True, help="bundle folder to write")
    p.add_argument("--workdir", help="folder for stage outputs and caches (default: <out>.work)")
    p.add_argument(
        "--stages", default="all", help="comma-separated subset of: brainmask,preprocess,encoder,scorers,bundle"
    )
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--data", help="data root (default: $LATENT_ANOMALY_DATA or ../shared/data)")
    p.add_argument("--force", action="store_true", help="redo stages whose outputs exist")
    p.add_argument("--max-cases", type=int, help="use only the first N scans of each split part (smoke tests)")
    p.add_argument(
        "--override",
        action="append",
        default=[],
        metavar="KEY=JSON",
        help="override a configuration entry, e.g. encoder_train.epochs=2",
    )
    p.add_argument("--scans", help="your own healthy scans: a folder of images or a CSV with a 'path' column")
    p.add_argument("--sequence", default="T1", help="the scans' sequence, recorded in the bundle (default: T1)")
    p.add_argument(
        "--skull",
        default="auto",
        choices=("auto", "stripped", "skull"),
        help="with --scans: skull-stripped scans or not (auto: decided per scan; skull: the reference model's "
        "brain-extraction network)",
    )
    p.add_argument("--val-fraction", type=float, default=0.2, help="with --scans: validation share (default 0.2)")
    p.add_argument("--reference-model", help="with --scans: bundle whose brain-mask network and templates to reuse")
    p.add_argument("--outlier-removal", action="store_true", help="drop high-loss training scans and restart")
    p.add_argument("--outlier-gamma", type=float, help="outlier threshold: gamma x the mean loss (default 1.5)")
    p.add_argument("--progress", default="auto", choices=("auto", "bar", "lines", "none"))


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
    _add_train(sub)
    from .cli_evaluate import add_batch, add_evaluate

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


def _apply_overrides(raw: dict, overrides: Sequence[str]) -> dict:
    for item in overrides:
        if "=" not in item:
            raise UsageError(f"--override needs KEY=JSON, got {item!r}")
        key, value = item.split("=", 1)
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            parsed = value
        node = raw
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = parsed
    return raw


def cmd_train(args: argparse.Namespace) -> int:
    from .devices import resolve_device
    from .errors import InputError
    from .training.config import STAGES, TrainConfig
    from .training.run import TrainingRun

    config_path = Path(args.config)
    if not config_path.is_file() and not config_path.is_absolute() and (REPO_ROOT / config_path).is_file():
        config_path = REPO_ROOT / config_path  # the default, from outside the checkout
    if not config_path.is_file():
        raise InputError(f"{config_path}: no such configuration file")
    try:
        raw = json.loads(config_path.read_text())
    except json.JSONDecodeError as error:
        raise InputError(f"{config_path}: invalid JSON ({error.msg} at line {error.lineno})") from None
    overrides = list(args.override) + ["encoder_train.outlier_removal=true"] * args.outlier_removal
    overrides += [f"encoder_train.outlier_gamma={args.outlier_gamma}"] if args.outlier_gamma is not None else []
    try:
        config = TrainConfig.from_dict(_apply_overrides(raw, overrides))
    except (ValueError, TypeError) as error:
        raise InputError(f"{config_path}: {error}") from None
    stages = STAGES if args.stages == "all" else tuple(s.strip() for s in args.stages.split(","))
    device, message = resolve_device(args.device)
    if message:
        print(f"note: {message}", file=sys.stderr)
    out = Path(args.out)
    workdir = Path(args.workdir) if args.workdir else out.with_name(out.name + ".work")
    run = TrainingRun(
        config,
        workdir,
        Path(args.data) if args.data else None,
        device,
        log=lambda s: print(s, flush=True),
        max_cases=args.max_cases,
        source=_cohort_source(args, workdir, config.seed),
        progress_mode=args.progress,
    )
    result = run.run(stages, force=args.force, out=out)
    if result:
        print(f"wrote bundle {result}")
    return 0


def _cohort_source(args: argparse.Namespace, workdir: Path, seed: int) -> object:
    """``--scans``: the own-cohort source, its split drawn (or read back) now so bad input fails first."""
    from .errors import InputError
    from .training.own_cohort import CohortSource

    if not args.scans:
        return None
    source = CohortSource(
        Path(args.scans),
        args.sequence,
        args.skull,
        args.val_fraction,
        Path(args.reference_model) if args.reference_model else None,
    )
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        source.split(workdir, seed)
    except ValueError as error:
        raise InputError(str(error)) from None
    return source


def cmd_review(args: argparse.Namespace) -> int:
    import importlib.util

    from LatentAnomalyReview import INSTALL_HINT, REQUIRED_MODULES

    if any(importlib.util.find_spec(name) is None for name in REQUIRED_MODULES):
        raise UsageError(INSTALL_HINT)
    from LatentAnomalyReview.results import load_results

    results = load_results(args.results)  # a missing or malformed folder fails here, before any server starts
    from LatentAnomalyReview.server import serve

    return serve(results, host=args.host, port=args.port)


COMMANDS = {"detect": cmd_detect, "info": cmd_info, "train": cmd_train, "review": cmd_review}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from .bundle import BundleError
    from .errors import InputError
    from .normalize import NormalisationError

    if args.command not in COMMANDS:
        from .cli_evaluate import COMMANDS as MORE

        COMMANDS.update(MORE)
    try:
        return COMMANDS[args.command](args)
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
