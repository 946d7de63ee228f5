"""`latent-anomaly detect`: one scan in, a heatmap, a label map and a summary out."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .options import (
    DEVICES,
    PROGRESS_MODES,
    SKULL_MODES,
    add_conformal_options,
    age_value,
    subject_text,
    threshold_value,
)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "detect", help="detect anomalies in one scan", description="Detect anomalies in one T1-weighted brain MRI."
    )
    p.add_argument("input", help="NIfTI, NRRD, MHA file or a DICOM series folder")
    p.add_argument("--out", required=True, help="output folder (heatmap.nii.gz, labelmap.nii.gz, summary.json)")
    p.add_argument("--model", help="model bundle folder (default: the bundled T1 model)")
    p.add_argument("--scorer", help="scorer in the bundle (default: the bundle's default)")
    p.add_argument("--device", default="auto", choices=DEVICES)
    p.add_argument(
        "--skull",
        default="auto",
        choices=SKULL_MODES,
        help="whether the scan is skull-stripped (auto: decided from the scan)",
    )
    p.add_argument("--threshold", type=threshold_value, help="override the calibrated voxel threshold (implies --regions all)")
    add_conformal_options(p)
    p.add_argument(
        "--age",
        type=age_value,
        metavar="YEARS",
        help="the patient's age: p-values against the healthy calibration scans of the same age band (under 40, "
        "40-59, 60 and older) instead of all of them; needs a model with calibration ages (1.8.0 or later)",
    )
    p.add_argument("--format", default="nii.gz", choices=("nii.gz", "nrrd", "mha"), help="output image format")
    p.add_argument("--progress", default="auto", choices=PROGRESS_MODES)
    p.add_argument("--series", help="DICOM SeriesInstanceUID to use when the input folder holds several series")
    p.add_argument("--overwrite", action="store_true", help="replace results already in --out")
    p.add_argument(
        "--dicom-seg",
        action="store_true",
        help="DICOM series input: also write the label map as a DICOM SEG, labelmap.seg.dcm (needs the dicom extra)",
    )


def run(args: argparse.Namespace) -> int:
    from ..outputs.detection import detect_file, output_folder

    cleaned: list[str] = []  # leftovers of a killed earlier run, removed
    with output_folder(args.out, overwrite=args.overwrite, inputs=(args.input,), notes=cleaned) as staging:
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
            age=args.age,
        )
    flagged = summary["flagged_volume_ml"]
    print(
        f"{summary['model']['name']} {summary['model']['version']} ({summary['model']['scorer']}): "
        f"{summary['n_components']} region(s) in the label map, {flagged:.1f} mL "
        f"({100 * summary['flagged_fraction_of_brain']:.2f}% of brain); {subject_text(summary)}; "
        f"outputs in {Path(args.out)}"
    )
    warnings = summary.get("warnings", [])
    for message in cleaned:
        print(f"note: {message}", file=sys.stderr)
    for message in summary.get("messages", []):
        if message not in warnings:
            print(f"note: {message}", file=sys.stderr)
    for message in warnings:
        print(f"warning: {message}", file=sys.stderr)
    return 0
