"""How strong is the statistical atlas, and what does the latent scorer add to it?

    python benchmarks/atlas_baseline.py [--workdir runs/v2] [--scorer ocsvm] [--brats]

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

import argparse
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch
from common import brats_cases, machine, require_data

from LatentAnomalyLib.evaluation_run import markdown_table
from LatentAnomalyLib.io import read_image
from LatentAnomalyLib.metrics import voxel_metrics
from LatentAnomalyLib.model import Model
from LatentAnomalyLib.pipeline import DetectOptions, Detector
from LatentAnomalyLib.postprocess import PostprocessConfig, postprocess
from LatentAnomalyLib.scorers import EncodedScan
from LatentAnomalyLib.scorers.atlas import DIRECTIONS, AtlasScorer
from LatentAnomalyLib.training.calibrate import build_synthetic_set


def load_cache(workdir: str, part: str) -> list[EncodedScan]:
    path = Path(workdir, "cache", f"{part}.npz")
    if not path.exists():
        raise SystemExit(f"no {part} cache at {path}: run `latent-anomaly train --stages preprocess` first")
    data = np.load(path)
    return [EncodedScan(i, m) for i, m in zip(data["images"].astype(np.float32), data["masks"].astype(bool))]


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


def pooled(rows: list[dict], name: str, maps: list[dict], labels: list[np.ndarray], masks: list[np.ndarray]) -> None:
    y = np.concatenate([lab[m] for lab, m in zip(labels, masks)])
    for method in maps[0]:
        x = np.concatenate([mp[method][m] for mp, m in zip(maps, masks)])
        metrics = voxel_metrics(x, y)
        rows.append({"data": name, "method": method, **{k: metrics[k] for k in ("auroc", "auprc", "best_dice")}})


def encode(model: Model, image: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        x = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[None, None]
        return model.standardise_latent(model.encoder.encode(x)[0].numpy())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default="runs/v2")
    parser.add_argument("--model")
    parser.add_argument("--scorer", default="ocsvm")
    parser.add_argument("--seed", type=int, default=20261123)
    parser.add_argument("--brats", action="store_true", help="also report the 14 BraTS T1 scans")
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = Model.load(args.model)
    train = load_cache(args.workdir, "train")
    atlases = {}
    for direction in DIRECTIONS:
        atlases[direction] = AtlasScorer(direction=direction)
        atlases[direction].fit(train)  # unmirrored training scans, as the training run fits it
    maps_of = Maps(model, args.scorer, atlases)
    synthetic = build_synthetic_set(
        load_cache(args.workdir, "val"), model.encoder, model.latent_mean, model.latent_std, "cpu", args.seed, False
    )
    rows: list[dict] = []
    masks = [s.mask for s in synthetic.scans]
    maps = [maps_of(s) for s in synthetic.scans]
    pooled(rows, "IXI validation + synthetic lesions", maps, [lab.astype(bool) for lab in synthetic.labels], masks)
    if args.brats:
        detector = Detector(model, DetectOptions(scorer=args.scorer, device="cpu"))
        maps, labels, masks = [], [], []
        for case in brats_cases(require_data()):
            pre = detector.preprocess(read_image(case.images["t1"]), {})
            on_grid = maps_of(EncodedScan(pre.image, pre.mask, encode(model, pre.image)))
            grid = model.preprocess.grid
            maps.append({k: sitk.GetArrayFromImage(pre.to_native(v, grid)) for k, v in on_grid.items()})
            labels.append(sitk.GetArrayFromImage(sitk.ReadImage(str(case.label))) > 0)
            masks.append(pre.native_mask)
        pooled(rows, "BraTS T1 (report only)", maps, labels, masks)
    print(f"{machine()}; model {model.name} {model.version}")
    print(markdown_table(rows, ["data", "method", "auroc", "auprc", "best_dice"]))


if __name__ == "__main__":
    main()
