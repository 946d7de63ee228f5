"""Did a retraining reproduce a bundle? File checksums, then detection outputs, compared side by side.

    python benchmarks/compare_bundles.py models/latent-anomaly-t1 <retrained bundle> [--scans a.nii.gz ...]

Bit-identical files need no further look. Files that differ (e.g. a bundle trained before
registration was made single-threaded, whose registrations differ from today's by about 1e-5)
are judged by what a user sees: the same scans detected with both bundles, giving the largest
heatmap difference, the Dice of the two label maps, flagged volumes and subject scores. Scans
default to the committed samples plus, when ../shared/data is present, the first BraTS T1.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from LatentAnomalyLib.bundle.model import Model
from LatentAnomalyLib.evaluation import datasets
from LatentAnomalyLib.evaluation.outputs import markdown_table
from LatentAnomalyLib.io.read import read_image
from LatentAnomalyLib.pipeline import DetectOptions, Detector

SAMPLES = Path(__file__).resolve().parents[1] / "Testing" / "Data"


def default_scans() -> list[Path]:
    scans = [SAMPLES / "IXI_sample_T1.nii.gz", SAMPLES / "MSLUB_patient07_T1.nii.gz"]
    root = datasets.data_root()
    if (root / "brats2018").is_dir():
        scans.append(Path(datasets.brats_cases(root)[0].images["t1"]))
    return scans


def file_table(a: Path, b: Path) -> list[dict[str, str]]:
    files_a = json.loads((a / "manifest.json").read_text())["files"]
    files_b = json.loads((b / "manifest.json").read_text())["files"]
    rows = []
    for name in sorted(set(files_a) | set(files_b)):
        if name not in files_a or name not in files_b:
            verdict = "only in " + ("B" if name not in files_a else "A")
        else:
            verdict = "identical" if files_a[name] == files_b[name] else "differs"
        rows.append({"file": name, "A vs B": verdict})
    return rows


def detection_table(a: Path, b: Path, scans: list[Path], scorer: str | None) -> list[dict[str, str]]:
    detectors = [Detector(Model.load(p), DetectOptions(scorer=scorer, device="cpu")) for p in (a, b)]
    rows = []
    for scan in scans:
        image = read_image(scan)
        results = [d.detect(image) for d in detectors]
        heat = [sitk.GetArrayFromImage(r.heatmap) for r in results]
        labels = [sitk.GetArrayFromImage(r.labelmap) > 0 for r in results]
        both = labels[0].sum() + labels[1].sum()
        dice = 2 * (labels[0] & labels[1]).sum() / both if both else 1.0
        rows.append(
            {
                "scan": scan.name,
                "max abs heatmap A - B": f"{np.abs(heat[0] - heat[1]).max():.4f}",
                "max abs heatmap A": f"{np.abs(heat[0]).max():.2f}",
                "label-map Dice A vs B": f"{dice:.4f}",
                "flagged mL A / B": " / ".join(f"{r.summary['flagged_volume_ml']:.2f}" for r in results),
                "subject score A / B": " / ".join(f"{r.summary['subject_score']:.3f}" for r in results),
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a", type=Path)
    parser.add_argument("b", type=Path)
    parser.add_argument("--scans", nargs="*", type=Path)
    parser.add_argument("--scorer", help="default: each bundle's default scorer")
    args = parser.parse_args()
    print(markdown_table(file_table(args.a, args.b), ["file", "A vs B"]))
    print()
    rows = detection_table(args.a, args.b, args.scans or default_scans(), args.scorer)
    print(markdown_table(rows, list(rows[0])))


if __name__ == "__main__":
    main()
