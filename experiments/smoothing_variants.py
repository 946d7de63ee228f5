"""Post-processing of gaussian4mm's mirror-averaged map: which smoothing, judged on validation.

    python experiments/smoothing_variants.py [--workdir runs/v6] [--model DIR] [--brats]

Each row filters the same raw map (gaussian4mm averaged with the mirrored view, upsampled to the 2 mm
model grid) differently after the within-scan normalisation: the 3-voxel median filter that the
training run's search chose for model 1.3.0, a Gaussian (sigma in 2 mm voxels) after it, a Gaussian
alone, a 5-voxel median. Tumours are compact blobs several centimetres wide, and the 4 mm grid's
scores are noisy point to point, so some smoothing should rank lesion voxels better; how much is the
question. Judged on synthetic lesions in the 20 IXI validation scans, clean and degraded (as in
view_averaging_variants.py); with ``--brats`` also on the 14 BraTS T1 scans (report only).
Rule fixed before the run: adopt an option only if it beats ``median 3`` on clean validation AUPRC
and does not lose on the degraded copies; among several, the best on clean validation AUPRC.
"""

from __future__ import annotations

import numpy as np
from grid_maps import encode_latent, run_grid_benchmark

from LatentAnomalyLib.bundle.model import Model
from LatentAnomalyLib.score.base import EncodedScan, mirror_x
from LatentAnomalyLib.score.postprocess import PostprocessConfig, postprocess

OPTIONS = {
    "median 3 (model 1.3.0)": {"median_size": 3},
    "median 3 + Gaussian 1": {"median_size": 3, "gaussian_sigma_vox": 1.0},
    "median 3 + Gaussian 2 (model 1.4.0)": {"median_size": 3, "gaussian_sigma_vox": 2.0},
    "Gaussian 1": {"gaussian_sigma_vox": 1.0},
    "median 5": {"median_size": 5},
}


class Smoothings:
    def __init__(self, model: Model):
        self.model = model
        self.scorer = model.scorers["gaussian4mm"]
        if not self.scorer.mirror_average:
            raise SystemExit(
                "this benchmark needs a model whose gaussian4mm averages with the mirrored view (>= 1.3.0)"
            )

    def latent(self, image: np.ndarray) -> np.ndarray:
        return encode_latent(self.model, image)

    def maps(self, image: np.ndarray, mask: np.ndarray) -> dict[str, np.ndarray]:
        scan = EncodedScan(image, mask, self.latent(image))
        scan.mirrored_latent = self.latent(mirror_x(image))
        raw = self.scorer.score(scan)
        return {
            name: postprocess(raw, mask, PostprocessConfig(**{"scan_normalise": True, **options}))
            for name, options in OPTIONS.items()
        }


def main() -> None:
    run_grid_benchmark(__doc__, "runs/v6", "smoothing", lambda model, args: Smoothings(model).maps, degraded=True)


if __name__ == "__main__":
    main()
