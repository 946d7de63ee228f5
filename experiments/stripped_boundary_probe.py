"""Probe 2 (validation only) of candidate A, docs/map-design.md: keep a site's skull stripping from creating regions.

    nice -n 5 python experiments/stripped_boundary_probe.py [--limit 10]

Probe 1 (template_fill_probe.py) filled every model-grid voxel of the template brain (dilated 4 mm) that a
stripped input lacks: the brainstem cut stopped flagging, orbital fat left in did not, and the filled ring around a
tighter cortex lowered healthy p-values. Pipelines compared here, on skull-stripped inputs only (inputs with skull
are untouched, so the bundle's IXI calibration stays valid), all on the 2 mm model grid after normalisation
(white matter at 1):
- ``current``: the shipped pipeline;
- ``thick_fill``: template tissue only in the parts of the missing template brain thicker than 4 mm (the gap
  opened by a 2-voxel ball: a cut brainstem or pole, filled up to the cut, not the thin ring around a tighter
  cortex);
- ``fat_cut``: voxels brighter than 1.15 x white matter within 6 mm of the mask's boundary leave the mask and the
  image (orbital fat and marrow that a site's tool left in; brain tissue is not brighter than white matter on T1);
- ``thick_fill_fat_cut``: both;
- ``own_mask``: the product's brain-extraction network also run on the stripped input, the scored mask being the
  site's mask intersected with the network's (orbital fat and dura the site left in are mostly outside it);
  ``own_mask_thick_fill`` adds the thick fill;
- ``band_mask``: the network's mask used only in the site mask's outer 6 mm (deeper tissue, where a tumour would
  be, always stays); ``band_mask_thick_fill`` adds the thick fill.
Reads the first ``--limit`` IXI validation scans (never test) under three stripping variants, and the 7 BraTS
validation cases of splits/brats_t1_split.json. Prints flags and median p for each pipeline.
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
from LatentAnomalyLib.preprocess.brainmask import mask_from_probability, predict_probability
from LatentAnomalyLib.preprocess.normalize import normalise

VARIANTS = ("reference", "brainstem_cut_25mm", "orbits_in_6mm")
PIPELINES = (
    "current",
    "thick_fill",
    "fat_cut",
    "thick_fill_fat_cut",
    "own_mask",
    "own_mask_thick_fill",
    "band_mask",
    "band_mask_thick_fill",
)
BAND_MM = 6.0
FAT = 1.15  # x white matter
BAND_VOXELS = 3  # 6 mm on the model grid


def probed_detector(model: Model, alpha: float, fill: bool, fat: bool, own_mask: bool, band: bool = False) -> Detector:
    detector = Detector(model, DetectOptions(device="cpu", alpha=alpha))
    pre = detector.preprocessor
    template = pre.template
    brain = template.mask.astype(bool)
    filled_t1, _ = normalise(np.asarray(template.t1, dtype=np.float32), brain, template.gm, template.wm,
                             pre.config.normalisation)  # fmt: skip
    near = ndimage.binary_dilation(brain, iterations=2)
    original_run, original_mask = pre.run, pre.brain_mask

    def brain_mask(image, skull="auto"):
        mask, was_stripped = original_mask(image, skull)
        if own_mask and was_stripped:
            prob = predict_probability(pre.brainmask_net, image, pre.config.brainmask, pre.device, None)
            net = mask_from_probability(prob, image)
            if band:  # only the outer BAND_MM of the site's mask may be taken away
                inner = ndimage.distance_transform_edt(mask, sampling=image.GetSpacing()[::-1]) > BAND_MM
                net = net | inner
            if (mask & net).sum() > 0.5 * mask.sum():  # the network must find most of the brain to overrule
                mask = mask & net
        return mask, was_stripped

    def run(image, skull="auto"):
        out = original_run(image, skull)
        if not out.skull_stripped:
            return out
        if fat:
            band = out.mask & ~ndimage.binary_erosion(out.mask, iterations=BAND_VOXELS)
            cut = band & (out.image > FAT)
            out.mask = out.mask & ~cut
            out.image = np.where(cut, 0.0, out.image).astype(np.float32)
        if fill:
            thick = ndimage.binary_opening(near & ~out.mask, iterations=2)
            out.image = np.where(thick, filled_t1, out.image).astype(np.float32)
        return out

    pre.run, pre.brain_mask = run, brain_mask
    return detector


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=10)
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--pipelines", default=",".join(PIPELINES))
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--no-brats", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(2)
    model = Model.load(None)
    detectors = {
        name: probed_detector(
            model, args.alpha, "fill" in name, "fat" in name, "mask" in name, band=name.startswith("band")
        )
        for name in args.pipelines.split(",")
    }
    rows = []

    def record(set_name: str, variant: str, case_id: str, image: sitk.Image) -> None:
        for name, detector in detectors.items():
            s = detector.detect(image).summary
            rows.append({"set": set_name, "variant": variant, "pipeline": name, "case": case_id,
                         "flagged": s["subject_flagged"], "p": s["subject_p_value"]})  # fmt: skip
        print(case_id, variant, [round(r["p"], 3) for r in rows[-len(detectors) :]], flush=True)

    for case in set_cases("ixi-val")[: args.limit]:
        scan, labels = sitk.ReadImage(str(case.images["t1"])), sitk.ReadImage(str(case.brain_mask))
        for variant in args.variants.split(","):
            record("ixi-val", variant, case.case_id, stripped(scan, labels, variant))
    for case in [] if args.no_brats else datasets.brats_half("validation"):
        record("brats-val", "as given", case.case_id, sitk.ReadImage(str(case.images["t1"])))
    print("\n| set | variant | pipeline | flagged | median p |\n|---|---|---|---|---|")
    for key in dict.fromkeys((r["set"], r["variant"], r["pipeline"]) for r in rows):
        sel = [r for r in rows if (r["set"], r["variant"], r["pipeline"]) == key]
        print(
            f"| {' | '.join(key)} | {sum(r['flagged'] for r in sel)}/{len(sel)} | {np.median([r['p'] for r in sel]):.3f} |"
        )


if __name__ == "__main__":
    main()
