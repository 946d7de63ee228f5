"""Shared by the experiments that compare several model-grid maps: validation cache, pooling, BraTS on its own grid.

Such a benchmark turns one scan into a dict of named post-processed maps on the model grid. It is judged on
the training run's synthetic lesions in the IXI validation scans and, for the report only, on the BraTS T1
scans mapped back to their own grid, pooled over brain voxels as in run_benchmark.py.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import benchmarks_on_path  # noqa: F401  (benchmarks/ helpers)
import numpy as np
import SimpleITK as sitk
import torch
from common import machine, require_data

from LatentAnomalyLib import DEFAULT_SEED
from LatentAnomalyLib.bundle.model import Model
from LatentAnomalyLib.encode.encoding import encode
from LatentAnomalyLib.evaluation.datasets import brats_cases
from LatentAnomalyLib.evaluation.metrics import voxel_metrics
from LatentAnomalyLib.evaluation.outputs import markdown_table
from LatentAnomalyLib.io.read import read_image
from LatentAnomalyLib.pipeline import DetectOptions, Detector
from LatentAnomalyLib.preprocess.chain import Preprocessed
from LatentAnomalyLib.score.base import EncodedScan
from LatentAnomalyLib.training.augment import AugmentConfig, degrade
from LatentAnomalyLib.training.calibrate import build_synthetic_set

MapsOf = Callable[[Preprocessed], dict[str, np.ndarray]]
# The training augmentation's input degradations, always on (blur in half): a stand-in for other scanners.
DEGRADE = AugmentConfig(contrast_probability=1.0, bias_probability=1.0, blur_probability=0.5, noise_probability=1.0)


def encode_latent(model: Model, image: np.ndarray) -> np.ndarray:
    """The model's standardised latent map of one model-grid image, on the CPU."""
    return encode(model.encoder, image[None], stats=(model.latent_mean, model.latent_std)).latents[0]


def load_cache(workdir: str, part: str) -> list[EncodedScan]:
    """Preprocessed scans of one split part from a training work folder's cache (no latents)."""
    path = Path(workdir, "cache", f"{part}.npz")
    if not path.exists():
        raise SystemExit(f"no {part} cache at {path}: run `latent-anomaly train --stages preprocess` first")
    data = np.load(path)
    return [EncodedScan(i, m) for i, m in zip(data["images"].astype(np.float32), data["masks"].astype(bool))]


def pooled(
    rows: list[dict], name: str, maps: list[dict], labels: list[np.ndarray], masks: list[np.ndarray], key: str
) -> None:
    """Append one row per map name: voxel AUROC / AUPRC / best Dice pooled over the masked voxels."""
    y = np.concatenate([lab[m] for lab, m in zip(labels, masks)])
    for method in maps[0]:
        x = np.concatenate([mp[method][m] for mp, m in zip(maps, masks)])
        metrics = voxel_metrics(x, y)
        rows.append({"data": name, key: method, **{k: metrics[k] for k in ("auroc", "auprc", "best_dice")}})


def brats_rows(rows: list[dict], model: Model, scorer: str, maps_of: MapsOf, key: str) -> None:
    """Score the 14 BraTS T1 scans (whole tumour, on each scan's own grid) and append the pooled rows."""
    detector = Detector(model, DetectOptions(scorer=scorer, device="cpu"))
    maps, labels, masks = [], [], []
    for case in brats_cases(require_data()):
        pre = detector.preprocess(read_image(case.images["t1"]), {})
        grid = model.preprocess.grid
        maps.append({k: sitk.GetArrayFromImage(pre.to_native(v, grid)) for k, v in maps_of(pre).items()})
        labels.append(sitk.GetArrayFromImage(sitk.ReadImage(str(case.label))) > 0)
        masks.append(pre.native_mask)
    pooled(rows, "BraTS T1 (report only)", maps, labels, masks, key)


def grid_arguments(doc: str, workdir: str) -> argparse.ArgumentParser:
    """The options every grid benchmark shares; a script adds its own."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--workdir", default=workdir)
    parser.add_argument("--model")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--brats", action="store_true", help="also report the 14 BraTS T1 scans")
    return parser


def validation_rows(
    rows: list[dict],
    model: Model,
    workdir: str,
    seed: int,
    maps_of: Callable[[EncodedScan], dict],
    key: str,
    degraded: bool = False,
) -> None:
    """Paint the training run's synthetic lesions into the validation cache, map each scan, append the pooled rows.

    With ``degraded``, the validation scans first go through :data:`DEGRADE` (seeded), then get the same lesions.
    """
    scans = load_cache(workdir, "val")
    name = "IXI validation + synthetic lesions"
    if degraded:
        generator = torch.Generator().manual_seed(seed)
        scans = [
            EncodedScan(
                degrade(
                    torch.from_numpy(s.image)[None, None],
                    torch.from_numpy(s.mask)[None, None].float(),
                    DEGRADE,
                    generator,
                )[0, 0]
                .numpy()
                .astype(np.float32),
                s.mask,
            )
            for s in scans
        ]
        name = "IXI validation, degraded + synthetic"
    synthetic = build_synthetic_set(
        scans, model.encoder, model.latent_mean, model.latent_std, "cpu", seed, reconstruct=False
    )
    maps = [maps_of(s) for s in synthetic.scans]
    labels = [lab.astype(bool) for lab in synthetic.labels]
    pooled(rows, name, maps, labels, [s.mask for s in synthetic.scans], key)


ImageMaps = Callable[[np.ndarray, np.ndarray], dict[str, np.ndarray]]


def run_grid_benchmark(
    doc: str, workdir: str, key: str, make_maps: Callable[[Model, argparse.Namespace], ImageMaps], degraded: bool
) -> None:
    """The shared main(): parse options, build the script's (image, mask) -> maps function, print the pooled table.

    Validation rows come first (clean, then degraded copies when ``degraded``); BraTS rows with ``--brats``.
    """
    args = grid_arguments(doc, workdir).parse_args()
    torch.set_num_threads(2)
    model = Model.load(args.model)
    maps = make_maps(model, args)
    rows: list[dict] = []
    for copies in (False, True) if degraded else (False,):
        validation_rows(rows, model, args.workdir, args.seed, lambda s: maps(s.image, s.mask), key, copies)
    if args.brats:
        brats_rows(rows, model, "gaussian4mm", lambda pre: maps(pre.image, pre.mask), key)
    print(f"{machine()}; model {Path(model.bundle.folder).name} {model.version}")
    print(markdown_table(rows, ["data", key, "auroc", "auprc", "best_dice"]))
