"""Design 3 (issue 15): does adding the hypo-intensity atlas map to gaussian4mm's map rank lesions better?

    python benchmarks/cache_scans.py --sets ixi-train,ixi-val     # once: the scan cache
    python benchmarks/family_workdir.py --work runs/fam/ae          # cache/{train,val}.npz from it
    python experiments/atlas_sum_choice.py [--workdir runs/fam/ae] [--model DIR]

Why: models 1.5.0-1.6.0 met the healthy targets of issue 15 and missed the lesion ones (BraTS T1 9/14 flagged,
lesion-wise sensitivity 0.196), and docs/calibration.md traces that to the score maps, not to the calibration.
The bundle already carries a second, independent map: the statistical atlas's hypo-intensity z-score
(``scorers/atlas``), in the same healthy-spread units after within-scan standardisation. For the 8 mm OC-SVM
their sum ranked validation lesions better (docs/results.md, *How strong is the atlas baseline?*: AUPRC 0.472 ->
0.514); it was never tried with gaussian4mm, the default since model 1.2.0.

Candidates (each map post-processed by the bundle's own settings for its scorer, then summed):
``gaussian4mm`` (model 1.6.0), ``gaussian4mm + 0.5 atlas low``, ``gaussian4mm + atlas low``.

Data: the 20 IXI validation scans from the work folder's cache (``runs/fam/ae`` holds the bundled model's
preprocessing of them), with the training run's synthetic lesions; clean, then the same scans through the
training augmentation's acquisition changes (contrast, bias field, noise, blur) before the lesions. No scan of
a reported set (IXI test, other sites, BraTS, MSLUB) is read.

Rule, written and committed before the first run: a candidate replaces ``gaussian4mm`` only if its pooled voxel
AUPRC on the clean validation lesions is at least 0.02 above gaussian4mm's AND its AUPRC on the degraded
copies is not below gaussian4mm's; among several, the one with the highest clean AUPRC. If one is adopted, the
product gets it as its default map, its voxel threshold and conformal sets are recalibrated exactly as for
1.5.0/1.6.0, and the reported sets are measured after; if none is, the bundle stays at 1.6.0.
"""

from __future__ import annotations

import benchmarks_on_path  # noqa: F401  (benchmarks/ helpers)
import numpy as np
import torch
from common import machine
from grid_maps import encode_latent, grid_arguments, validation_rows

from LatentAnomalyLib.bundle.model import Model
from LatentAnomalyLib.evaluation.outputs import markdown_table
from LatentAnomalyLib.score.base import EncodedScan, mirror_x
from LatentAnomalyLib.score.postprocess import PostprocessConfig, postprocess

WEIGHTS = {"gaussian4mm": 0.0, "gaussian4mm + 0.5 atlas low": 0.5, "gaussian4mm + atlas low": 1.0}
MARGIN = 0.02


class SumMaps:
    """gaussian4mm's post-processed map plus w times the atlas's, for every candidate weight w."""

    def __init__(self, model: Model):
        self.model = model
        scorers = model.calibration["scorers"]
        if model.scorers["atlas"].direction != "low":
            raise SystemExit("this design needs the bundle's atlas in the hypo-intensity direction (models >= 1.1.0)")
        self.latent_post = PostprocessConfig(**scorers["gaussian4mm"]["postprocess"])
        self.atlas_post = PostprocessConfig(**scorers["atlas"]["postprocess"])

    def __call__(self, scan: EncodedScan) -> dict[str, np.ndarray]:
        full = EncodedScan(scan.image, scan.mask, encode_latent(self.model, scan.image))
        full.mirrored_latent = encode_latent(self.model, mirror_x(scan.image))
        latent = postprocess(self.model.scorers["gaussian4mm"].score(full), scan.mask, self.latent_post)
        atlas = postprocess(self.model.scorers["atlas"].score(full), scan.mask, self.atlas_post)
        return {name: latent + weight * atlas for name, weight in WEIGHTS.items()}


def choose(rows: list[dict]) -> str:
    """The rule in the docstring, applied to the pooled rows."""
    clean = {r["map"]: r["auprc"] for r in rows if "degraded" not in r["data"]}
    degraded = {r["map"]: r["auprc"] for r in rows if "degraded" in r["data"]}
    passing = [
        name
        for name in WEIGHTS
        if name != "gaussian4mm"
        and clean[name] >= clean["gaussian4mm"] + MARGIN
        and degraded[name] >= degraded["gaussian4mm"]
    ]
    return max(passing, key=clean.__getitem__) if passing else "gaussian4mm"


def main() -> None:
    args = grid_arguments(__doc__, "runs/fam/ae").parse_args()
    if args.brats:
        raise SystemExit("design 3 reads validation scans only; the reported sets are measured after the choice")
    torch.set_num_threads(2)
    model = Model.load(args.model)
    maps = SumMaps(model)
    rows: list[dict] = []
    for copies in (False, True):
        validation_rows(rows, model, args.workdir, args.seed, maps, "map", copies)
    print(f"{machine()}; model {model.name} {model.version}; {args.workdir} validation cache")
    print(markdown_table(rows, ["data", "map", "auroc", "auprc", "best_dice"]))
    print(f"choice by the rule: {choose(rows)}")


if __name__ == "__main__":
    main()
