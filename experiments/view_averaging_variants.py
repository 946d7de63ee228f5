"""gaussian4mm with a second view of the scan (its left-right mirror) and per-scan latent recentring.

    python experiments/view_averaging_variants.py [--workdir runs/v5] [--model DIR] [--brats]

Rows (all through the bundle's post-processing for ``gaussian4mm``):
- ``one view``: the scan's own map (model 1.2.0's default);
- ``mirror average``: the mean of that map and the mirrored map of the mirrored scan (``detect``
  from model 1.3.0). Training latents include mirrored scans, so both views are healthy-like
  where the brain is, and two encodings of one scan halve the part of the score that is encoder noise;
- ``recentre``: each scan's whitening input minus its own median over the brain (per latent channel),
  a per-scan correction of what a scanner shifts everywhere alike; per-point statistics refitted on
  the same held-out training subjects with that correction;
- ``recentre + mirror``; ``one view + gaussian (8 mm)``: the sum with the 8 mm Gaussian's map.
Judged on synthetic lesions in the 20 IXI validation scans, clean and in degraded copies (contrast,
bias field and noise always, blur in half: what augment.degrade does in training, a stand-in for other
scanners), where decisions are made; with ``--brats`` also on the 14 BraTS T1 scans (report only).
Rule fixed before the run: adopt a variant only if it beats ``one view`` on clean validation AUPRC
and does not lose on the degraded copies; among several, the best on clean validation AUPRC.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from grid_maps import encode_latent, load_cache, run_grid_benchmark

from LatentAnomalyLib.bundle.model import Model
from LatentAnomalyLib.score.base import EncodedScan, mirror_x, upsample
from LatentAnomalyLib.score.location import split_held_out
from LatentAnomalyLib.score.postprocess import PostprocessConfig, postprocess


class Views:
    """Maps of one scan under each variant; the recentred statistics are refitted once."""

    def __init__(self, model: Model, workdir: str):
        self.model = model
        self.fine = model.scorers["gaussian4mm"]
        self.factor = torch.from_numpy(self.fine.space.factor())
        self.post = PostprocessConfig(**model.calibration["scorers"]["gaussian4mm"]["postprocess"])
        self.post8 = PostprocessConfig(**model.calibration["scorers"]["gaussian"]["postprocess"])
        cache = load_cache(workdir, "train")
        ids = [str(v) for v in np.load(Path(workdir, "cache", "train.npz"))["ids"]]
        scans = [EncodedScan(s.image, s.mask, subject=i) for s, i in zip(cache, ids)]
        scans += [EncodedScan(mirror_x(s.image), mirror_x(s.mask), subject=i) for s, i in zip(cache, ids)]
        config = self.fine.config
        held, _ = split_held_out(scans, config.standardise_fraction, np.random.default_rng(config.seed))
        raw = np.stack([self.raw(self.latent(scans[i].image)) for i in held], axis=-1)
        median = np.median(raw, axis=-1)
        mad = 1.4826 * np.median(np.abs(raw - median[..., None]), axis=-1)
        self.recentred_stats = (median, np.maximum(mad, max(float(np.median(mad)) * 0.1, 1e-6)))

    def latent(self, image: np.ndarray) -> np.ndarray:
        return encode_latent(self.model, image)

    def raw(self, latent: np.ndarray) -> np.ndarray:
        """gaussian4mm's distances after removing the scan's per-channel median offset."""
        centred = self.fine.centred(latent)
        centred = centred - np.median(centred.reshape(-1, centred.shape[-1]), axis=0)
        return torch.einsum("pkc,pcd->pkd", torch.from_numpy(centred), self.factor).square().sum(-1).sqrt().numpy()

    def grid(self, latent: np.ndarray, recentre: bool) -> np.ndarray:
        if not recentre:
            return self.fine.score_latent_grid(latent)
        median, spread = self.recentred_stats
        points = self.fine._points()
        out = np.zeros(tuple(2 * int(v) for v in self.fine.space.arrays["grid_shape"]), np.float32)
        out[points[..., 0], points[..., 1], points[..., 2]] = (self.raw(latent) - median) / spread
        return out

    def maps(self, image: np.ndarray, mask: np.ndarray) -> dict[str, np.ndarray]:
        latent, mirrored = self.latent(image), self.latent(mirror_x(image))
        raw = {}
        for recentre, tag in ((False, "one view"), (True, "recentre")):
            own = upsample(self.grid(latent, recentre), mask.shape)
            raw[tag] = own
            raw[tag + " + mirror" if recentre else "mirror average"] = 0.5 * (
                own + mirror_x(upsample(self.grid(mirrored, recentre), mask.shape))
            )
        out = {k: postprocess((v * mask).astype(np.float32), mask, self.post) for k, v in raw.items()}
        coarse = upsample(self.model.scorers["gaussian"].score_latent_grid(latent), mask.shape)
        out["one view + gaussian (8 mm)"] = out["one view"] + postprocess(
            (coarse * mask).astype(np.float32), mask, self.post8
        )
        return out


def main() -> None:
    run_grid_benchmark(
        __doc__, "runs/v5", "variant", lambda model, args: Views(model, args.workdir).maps, degraded=True
    )


if __name__ == "__main__":
    main()
