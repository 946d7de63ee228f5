"""Score-map variants tried without retraining the encoder, judged first on validation data.

    python experiments/score_map_variants.py [--workdir runs/v2] [--scorer ocsvm] [--brats]

Each variant changes only how the scorer's latent-cell scores become a voxel map:
- ``base``: what `detect` does (the scorer's standardised cell scores, upsampled);
- ``contralateral``: the cell score minus the score of the same cell in the left-right mirrored scan,
  i.e. of the other hemisphere seen at this position. A scanner or sequence unlike IXI raises both
  hemispheres alike and cancels; a one-sided lesion does not. ``contralateral+`` keeps its positive part;
- ``shifted``: 8 encodings of the scan shifted by 4 mm along each axis, interleaved into a 4 mm score
  grid instead of the encoder's 8 mm one.
All variants go through the scorer's stored post-processing. Voxel AUROC / AUPRC / best Dice are
pooled over synthetic lesions painted into the 20 IXI validation scans (4 kinds each, the training
run's synthetic set; needs the training cache in ``--workdir``) and, with ``--brats``, over the 14
BraTS T1 scans (whole tumour, on the scan's own grid, as in run_benchmark.py). Decisions are taken on
the validation rows; the BraTS rows report.
"""

from __future__ import annotations

from collections.abc import Callable

import benchmarks_on_path  # noqa: F401  (benchmarks/ helpers)
import numpy as np
import torch
from common import machine
from grid_maps import brats_rows, grid_arguments, validation_rows

from LatentAnomalyLib.bundle.model import Model
from LatentAnomalyLib.encode.encoding import encode
from LatentAnomalyLib.evaluation.outputs import markdown_table
from LatentAnomalyLib.score.base import mirror_x, upsample
from LatentAnomalyLib.score.postprocess import PostprocessConfig, postprocess

Variant = Callable[[np.ndarray, np.ndarray], np.ndarray]


class Variants:
    def __init__(self, model: Model, scorer: str):
        self.model = model
        self.scorer = model.scorers[scorer]
        self.post = PostprocessConfig(**model.calibration["scorers"][scorer]["postprocess"])

    def cells(self, image: np.ndarray) -> np.ndarray:
        stats = (self.model.latent_mean, self.model.latent_std)
        return self.scorer.score_latent_grid(encode(self.model.encoder, image[None], stats=stats).latents[0])

    def shifted(self, image: np.ndarray, base: np.ndarray) -> np.ndarray:
        d, h, w = base.shape
        fine = np.zeros((2 * d, 2 * h, 2 * w), np.float32)
        for a in (0, 1):
            for b in (0, 1):
                for c in (0, 1):
                    moved = np.roll(image, (-2 * a, -2 * b, -2 * c), axis=(0, 1, 2))
                    fine[a::2, b::2, c::2] = base if a == b == c == 0 else self.cells(moved)
        # fine cell q is centred on voxel 2q + 1.5; upsample() assumes 2q + 0.5
        return np.roll(upsample(fine, image.shape), (1, 1, 1), axis=(0, 1, 2))

    def maps(self, image: np.ndarray, mask: np.ndarray) -> dict[str, np.ndarray]:
        base = self.cells(image)
        other = self.cells(mirror_x(image))
        raw = {
            "base": upsample(base, mask.shape),
            "contralateral": upsample(base - other, mask.shape),
            "contralateral+": upsample(np.maximum(base - other, 0.0), mask.shape),
            "shifted": self.shifted(image, base),
        }
        return {k: postprocess((v * mask).astype(np.float32), mask, self.post) for k, v in raw.items()}


def main() -> None:
    parser = grid_arguments(__doc__, "runs/v2")
    parser.add_argument("--scorer", default="ocsvm")
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = Model.load(args.model)
    variants = Variants(model, args.scorer)
    rows: list[dict] = []
    validation_rows(rows, model, args.workdir, args.seed, lambda s: variants.maps(s.image, s.mask), "variant")
    if args.brats:
        brats_rows(rows, model, args.scorer, lambda pre: variants.maps(pre.image, pre.mask), "variant")
    print(f"{machine()}; scorer {args.scorer}")
    print(markdown_table(rows, ["data", "variant", "auroc", "auprc", "best_dice"]))


if __name__ == "__main__":
    main()
