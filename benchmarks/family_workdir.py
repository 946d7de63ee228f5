"""Fill a `latent-anomaly train` work folder from the benchmark scan cache, so encoder runs skip preprocessing.

The IXI train and validation scans were already preprocessed by the bundled model (same preprocessing
as every configuration in ``configs/``) into ``runs/scan_cache/<model>/<set>/<case>.npz``
(``benchmarks/cache_scans.py``). This writes what the `train` command's preprocess stage would
(``cache/train.npz``, ``cache/val.npz`` with float16 images, their info files) and the bundled brain-mask
network, so ``latent-anomaly train --workdir WORK --stages encoder,scorers,bundle`` trains only the encoder.

``--inject N`` adds the T1 of the first N BraTS cases (sorted by id) to the training scans: the impure
training sets of the outlier-removal study (docs/encoders.md).

    python benchmarks/family_workdir.py --work WORK [--train-scans N] [--inject N]
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np

from LatentAnomalyLib.evaluation import datasets

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "runs" / "scan_cache" / "latent-anomaly-t1-1.4.0"


def _arrays(folder: Path, ids: list[str]) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    images, masks, info = [], [], []
    for case_id in ids:
        data = np.load(folder / f"{case_id}.npz")
        images.append(data["image"].astype(np.float16))
        masks.append(data["mask"].astype(bool))
        info.append({str(k): float(v) for k, v in zip(data["info_keys"], data["info_values"])})
    return np.stack(images), np.stack(masks), info


def fill(work: Path, train_scans: int | None, inject: int) -> dict[str, list[str]]:
    """Write the work folder's caches; returns the case ids of each part (and of the injected scans)."""
    cache = work / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    train = [c.case_id for c in datasets.ixi_cases("train")][:train_scans]
    val = [c.case_id for c in datasets.ixi_cases("val")]
    injected = sorted(c.case_id for c in datasets.brats_cases())[:inject]
    parts = {"train": [(CACHE / "ixi-train", i) for i in train] + [(CACHE / "brats", i) for i in injected]}
    parts["val"] = [(CACHE / "ixi-val", i) for i in val]
    for part, items in parts.items():
        images, masks, info = zip(*[_arrays(folder, [i]) for folder, i in items])
        ids = [i for _, i in items]
        np.savez_compressed(
            cache / f"{part}.npz", images=np.concatenate(images), masks=np.concatenate(masks), ids=np.asarray(ids)
        )
        (cache / f"{part}_info.json").write_text(json.dumps(dict(zip(ids, [x[0] for x in info])), indent=1))
    shutil.copy(ROOT / "models" / "latent-anomaly-t1" / "brainmask.safetensors", work / "brainmask.safetensors")
    summary = {"train": train, "val": val, "injected": injected}
    (work / "family_workdir.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--train-scans", type=int, default=None, help="the first N IXI train scans (default all)")
    parser.add_argument("--inject", type=int, default=0, help="add the T1 of the first N BraTS cases to training")
    args = parser.parse_args()
    summary = fill(args.work, args.train_scans, args.inject)
    print(f"{args.work}: {len(summary['train'])} IXI train + {len(summary['injected'])} injected, {len(summary['val'])} val")


if __name__ == "__main__":
    main()
