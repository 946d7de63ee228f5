"""How strong is the statistical atlas, and what does the latent scorer add to it?

    python experiments/atlas_baseline.py [--workdir runs/v2] [--scorer ocsvm] [--brats]

The latent method has to beat a voxel-wise z-score against registered healthy scans, so that
baseline must be as good as validation can make it. This script refits the atlas from the training
cache with each direction (|z|, hypo-intensity "low", hyper-intensity "high") and scores:
- each atlas direction (the bundle's atlas post-processing),
- the bundle's latent scorer,
- ``latent + atlas-low``: the sum of the two post-processed maps (both are in healthy-spread units
  after within-scan standardisation), an experiment, not something `detect` offers.
Voxel AUROC / AUPRC / best Dice are pooled over the training run's synthetic lesions in the 20 IXI
validation scans (where decisions are taken) and, with ``--brats``, over the 14 BraTS T1 scans on
their own grid (report only, as in run_benchmark.py).
"""

from __future__ import annotations

import benchmarks_on_path  # noqa: F401  (benchmarks/ helpers)
import numpy as np
import torch
from common import machine
from grid_maps import brats_rows, grid_arguments, load_cache, validation_rows

from LatentAnomalyLib.bundle.model import Model
from LatentAnomalyLib.encode.encoding import encode
from LatentAnomalyLib.evaluation.outputs import markdown_table
from LatentAnomalyLib.preprocess.chain import Preprocessed
from LatentAnomalyLib.score.atlas import DIRECTIONS, AtlasScorer
from LatentAnomalyLib.score.base import EncodedScan
from LatentAnomalyLib.score.postprocess import PostprocessConfig, postprocess


class Maps:
    """Post-processed model-grid maps of every compared method for one encoded scan."""

    def __init__(self, model: Model, scorer: str, atlases: dict[str, AtlasScorer]):
        self.model = model
        self.scorer_name = scorer
        self.atlases = atlases
        self.latent_post = PostprocessConfig(**model.calibration["scorers"][scorer]["postprocess"])
        self.atlas_post = PostprocessConfig(**model.calibration["scorers"]["atlas"]["postprocess"])

    def __call__(self, scan: EncodedScan) -> dict[str, np.ndarray]:
        latent = postprocess(self.model.scorers[self.scorer_name].score(scan), scan.mask, self.latent_post)
        out = {f"atlas {d}": postprocess(a.score(scan), scan.mask, self.atlas_post) for d, a in self.atlases.items()}
        out[self.scorer_name] = latent
        out[f"{self.scorer_name} + atlas low"] = latent + out["atlas low"]
        return out


def encoded(model: Model, pre: Preprocessed) -> EncodedScan:
    latent = encode(model.encoder, pre.image[None], stats=(model.latent_mean, model.latent_std)).latents[0]
    return EncodedScan(pre.image, pre.mask, latent)


def main() -> None:
    parser = grid_arguments(__doc__, "runs/v2")
    parser.add_argument("--scorer", default="ocsvm")
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = Model.load(args.model)
    train = load_cache(args.workdir, "train")
    atlases = {}
    for direction in DIRECTIONS:
        atlases[direction] = AtlasScorer(direction=direction)
        atlases[direction].fit(train)  # unmirrored training scans, as the training run fits it
    maps_of = Maps(model, args.scorer, atlases)
    rows: list[dict] = []
    validation_rows(rows, model, args.workdir, args.seed, maps_of, "method")
    if args.brats:
        brats_rows(rows, model, args.scorer, lambda pre: maps_of(encoded(model, pre)), "method")
    print(f"{machine()}; model {model.name} {model.version}")
    print(markdown_table(rows, ["data", "method", "auroc", "auprc", "best_dice"]))


if __name__ == "__main__":
    main()
