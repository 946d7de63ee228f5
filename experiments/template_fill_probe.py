"""Probe (validation only): does filling a stripped scan's missing brain with template tissue, and cutting what lies
outside the template's brain, keep a site's skull stripping from creating regions? Candidate A of docs/map-design.md.

    nice -n 10 python experiments/template_fill_probe.py [--limit 10]

Reads IXI validation scans (never test) under three stripping variants, and the 7 BraTS validation cases of
splits/brats_t1_split.json. For a skull-stripped input only, after the product's preprocessing: model-grid voxels
inside the template brain (dilated 4 mm) but outside the input's mask get the template's normalised T1 (the encoder
sees plausible anatomy where the site cut it away; those voxels stay outside the scored mask), and mask voxels
more than 4 mm outside the template brain are removed (orbital fat). Inputs with skull are untouched, so the
bundle's IXI calibration stays what it was. Prints flags and median p for the current and the probed pipeline.
"""

from __future__ import annotations

import argparse

import benchmarks_on_path  # noqa: F401 (puts benchmarks/ on the path)
import numpy as np
import SimpleITK as sitk
import torch
from cache_scans import set_cases
from scipy import ndimage

from LatentAnomalyLib.bundle.model import Model
from LatentAnomalyLib.evaluation import datasets
from LatentAnomalyLib.evaluation.skull_stripping import stripped
from LatentAnomalyLib.pipeline import DetectOptions, Detector
from LatentAnomalyLib.preprocess.normalize import normalise

VARIANTS = ("reference", "brainstem_cut_25mm", "orbits_in_6mm")


def fill_detector(model: Model, alpha: float) -> Detector:
    detector = Detector(model, DetectOptions(device="cpu", alpha=alpha))
    pre = detector.preprocessor
    template = pre.template
    brain = template.mask.astype(bool)
    t1 = np.asarray(template.t1, dtype=np.float32)
    filled_t1, _ = normalise(t1, brain, template.gm, template.wm, pre.config.normalisation)
    near = ndimage.binary_dilation(brain, iterations=2)
    original = pre.run

    def run(image, skull="auto"):
        out = original(image, skull)
        if not out.skull_stripped:
            return out
        gap = near & ~out.mask
        out.image = np.where(gap, filled_t1, out.image).astype(np.float32)
        cut = out.mask & ~near
        out.image[cut] = 0.0
        out.mask = out.mask & near
        return out

    pre.run = run
    return detector


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=10)
    parser.add_argument("--alpha", type=float, default=0.05)
    args = parser.parse_args()
    torch.set_num_threads(2)
    model = Model.load(None)
    detectors = {"current": Detector(model, DetectOptions(device="cpu", alpha=args.alpha)),
                 "fill": fill_detector(model, args.alpha)}  # fmt: skip
    rows = []
    for case in set_cases("ixi-val")[: args.limit]:
        scan, labels = sitk.ReadImage(str(case.images["t1"])), sitk.ReadImage(str(case.brain_mask))
        for variant in VARIANTS:
            image = stripped(scan, labels, variant)
            for name, detector in detectors.items():
                s = detector.detect(image).summary
                rows.append({"set": "ixi-val", "variant": variant, "pipeline": name, "case": case.case_id,
                             "flagged": s["subject_flagged"], "p": s["subject_p_value"]})  # fmt: skip
        print(case.case_id, [(r["variant"], r["pipeline"], round(r["p"], 3)) for r in rows[-6:]], flush=True)
    for case in datasets.brats_half("validation"):
        image = sitk.ReadImage(str(case.images["t1"]))
        for name, detector in detectors.items():
            s = detector.detect(image).summary
            rows.append({"set": "brats-val", "variant": "as given", "pipeline": name, "case": case.case_id,
                         "flagged": s["subject_flagged"], "p": s["subject_p_value"]})  # fmt: skip
        print(case.case_id, [(r["pipeline"], round(r["p"], 3)) for r in rows[-2:]], flush=True)
    print("\n| set | variant | pipeline | flagged | median p |\n|---|---|---|---|---|")
    for key in dict.fromkeys((r["set"], r["variant"], r["pipeline"]) for r in rows):
        sel = [r for r in rows if (r["set"], r["variant"], r["pipeline"]) == key]
        print(f"| {' | '.join(key)} | {sum(r['flagged'] for r in sel)}/{len(sel)} | {np.median([r['p'] for r in sel]):.3f} |")


if __name__ == "__main__":
    main()
