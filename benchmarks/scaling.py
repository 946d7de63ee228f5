"""How detection grows with scan size and how scorer fitting grows with the training-set size.

    python benchmarks/scaling.py [--workdir runs/v2] [--config configs/default_t1.json]

Detection: one BraTS T1 resampled to 0.8, 1.0, 1.5 and 2.0 mm (same head, more or fewer voxels).
Fitting: the latent space and each latent scorer fitted on the first N training subjects' cached
latents (and their mirrors), N = 12, 25, 50, 98.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from common import machine, require_data

from LatentAnomalyLib.bundle.model import Model
from LatentAnomalyLib.evaluation.outputs import markdown_table
from LatentAnomalyLib.io.read import read_image
from LatentAnomalyLib.pipeline import DetectOptions, Detector
from LatentAnomalyLib.preprocess.geometry import resample
from LatentAnomalyLib.score.registry import LATENT_SCORERS


def detect_scaling(model: Model, root: Path) -> list[dict]:
    image = read_image(root / "brats2018/Brats18_CBICA_ABM_1/Brats18_CBICA_ABM_1_t1.nii.gz")
    detector = Detector(model, DetectOptions(device="cpu"))
    rows = []
    for spacing in (0.8, 1.0, 1.5, 2.0):
        size = [int(round(s * sp / spacing)) for s, sp in zip(image.GetSize(), image.GetSpacing())]
        reference = sitk.Image(size, sitk.sitkFloat32)
        reference.SetSpacing([spacing] * 3)
        reference.SetOrigin(image.GetOrigin())
        reference.SetDirection(image.GetDirection())
        scan = resample(image, reference)
        detector.detect(scan)  # warm-up
        t0 = time.perf_counter()
        result = detector.detect(scan)
        rows.append(
            {
                "spacing_mm": spacing,
                "voxels_M": float(np.prod(size)) / 1e6,
                "seconds": time.perf_counter() - t0,
                **{
                    k: v
                    for k, v in result.summary["timings_s"].items()
                    if k in ("preprocess", "encode", "score", "map_to_scan")
                },
            }
        )
    return rows


def fit_scaling(workdir: Path, config_path: Path) -> list[dict]:
    from LatentAnomalyLib.encode.encoding import encode
    from LatentAnomalyLib.score.base import EncodedScan, latent_grid_mask, mirror_x
    from LatentAnomalyLib.score.location import LatentSpace
    from LatentAnomalyLib.score.registry import SCORERS
    from LatentAnomalyLib.training.config import TrainConfig
    from LatentAnomalyLib.training.run import TrainingRun

    config = TrainConfig.from_file(config_path)
    run = TrainingRun(config, workdir)
    encoder = run.encoder()
    images, masks, ids = run.load_cache("train")
    both = encode(encoder, images, mirrored=True, batch_size=4)
    latents, mirrored = both.latents, both.mirrored
    cells = np.stack([latent_grid_mask(m, config.encoder.stride) for m in masks])
    flat = np.moveaxis(latents, 1, -1)[cells]
    mean, std = flat.mean(0)[None, :, None, None, None], flat.std(0)[None, :, None, None, None] + 1e-6
    latents, mirrored = (latents - mean) / std, (mirrored - mean) / std
    rows = []
    for n in (12, 25, 50, len(images)):
        scans = [EncodedScan(images[i], masks[i], latents[i], subject=ids[i]) for i in range(n)]
        scans += [EncodedScan(mirror_x(images[i]), mirror_x(masks[i]), mirrored[i], subject=ids[i]) for i in range(n)]
        t0 = time.perf_counter()
        space = LatentSpace(config.latent_space).fit(scans)
        row = {"train_subjects": n, "latent_space_s": time.perf_counter() - t0}
        for spec in config.scorers:
            if spec.name in LATENT_SCORERS:
                scorer = SCORERS[spec.name](config.latent_space, standardise=spec.standardise, **spec.params)
                t0 = time.perf_counter()
                scorer.fit(scans, space=space)
                row[f"{spec.name}_s"] = time.perf_counter() - t0
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default="runs/v2")
    parser.add_argument("--config", default="configs/default_t1.json")
    parser.add_argument("--model")
    args = parser.parse_args()
    root = require_data()
    print(f"Measured on {machine()}\n")
    rows = detect_scaling(Model.load(args.model), root)
    print("### Detection time against scan size (one BraTS T1 resampled; detector already loaded)\n")
    print(
        markdown_table(rows, ("spacing_mm", "voxels_M", "seconds", "preprocess", "encode", "score", "map_to_scan"))
        + "\n"
    )
    if Path(args.workdir, "cache", "train.npz").exists():
        rows = fit_scaling(Path(args.workdir), Path(args.config))
        print("### Scorer fitting time against training-set size (seconds; mirrors doubled the scans)\n")
        print(markdown_table(rows, tuple(rows[0])))
    else:
        print(
            f"(no training cache in {args.workdir}: run `latent-anomaly train --stages preprocess` first for the fitting table)"
        )


if __name__ == "__main__":
    main()
