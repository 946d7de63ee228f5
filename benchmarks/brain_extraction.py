"""Brain extraction quality: Dice against the IXI brain labels on the IXI test split, and what it
does to scans that are already skull-stripped (BraTS, MSLUB, other sites).

    python benchmarks/brain_extraction.py

Uses the same Preprocessor.brain_mask call as `detect`. For skull-stripped inputs the mask should
be the scan's own foreground: the table gives the fraction of the foreground it keeps.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import SimpleITK as sitk
from common import machine, require_data

from LatentAnomalyLib.bundle.model import Model
from LatentAnomalyLib.evaluation import datasets
from LatentAnomalyLib.evaluation.outputs import markdown_table
from LatentAnomalyLib.io.read import read_image
from LatentAnomalyLib.pipeline import DetectOptions, Detector


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(2 * (a & b).sum() / max(a.sum() + b.sum(), 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model")
    args = parser.parse_args()
    root = require_data()
    model = Model.load(args.model)
    preprocessor = Detector(model, DetectOptions(device="cpu")).preprocessor
    dices, seconds, wrongly_stripped = [], [], 0
    for case in datasets.ixi_cases("test", root):
        image = read_image(case.images["t1"])
        t0 = time.perf_counter()
        mask, stripped = preprocessor.brain_mask(image, "auto")
        seconds.append(time.perf_counter() - t0)
        wrongly_stripped += int(stripped)
        truth = sitk.GetArrayFromImage(sitk.ReadImage(str(case.brain_mask))) > 0
        dices.append(dice(mask, truth))
    print(f"Brain extraction, measured {machine()}\n")
    rows = [
        {
            "data": "IXI test split (with skull)",
            "scans": len(dices),
            "mean Dice": float(np.mean(dices)),
            "min Dice": float(np.min(dices)),
            "seconds/scan": float(np.mean(seconds)),
            "taken as skull-stripped": wrongly_stripped,
        }
    ]
    print(markdown_table(rows, tuple(rows[0])) + "\n")
    stripped_rows = []
    for name, cases in (
        ("BraTS T1", [c.images["t1"] for c in datasets.brats_cases(root)]),
        ("MSLUB T1", [c.images["t1"] for c in datasets.mslub_cases(root)]),
        ("other sites", [c.images["t1"] for c in datasets.other_site_cases(root)]),
    ):
        kept, detected = [], 0
        for path in cases:
            image = read_image(path)
            mask, stripped = preprocessor.brain_mask(image, "auto")
            foreground = sitk.GetArrayFromImage(image) > 0
            detected += int(stripped)
            kept.append(float((mask & foreground).sum() / max(foreground.sum(), 1)))
        stripped_rows.append(
            {
                "data": name,
                "scans": len(cases),
                "recognised as skull-stripped": detected,
                "min foreground kept": float(np.min(kept)),
            }
        )
    print(markdown_table(stripped_rows, tuple(stripped_rows[0])))


if __name__ == "__main__":
    main()
