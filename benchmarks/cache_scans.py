"""Fill the scan cache (runs/scan_cache/<model version>/<set>/<case>.npz) used by cross-fitting and the benchmarks.

    nice -n 5 python benchmarks/cache_scans.py --sets ixi-train,ixi-val,ixi-test,other-sites,brats,mslub

Each scan is preprocessed and encoded (scan and mirrored copy) once with the bundle's own Detector on the CPU;
an existing cache file is reused. Sets: ixi-train, ixi-val, ixi-test, other-sites, brats (T1), mslub (T1).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from LatentAnomalyLib.bundle.model import Model
from LatentAnomalyLib.case import Case
from LatentAnomalyLib.evaluation import datasets
from LatentAnomalyLib.pipeline import DetectOptions, Detector
from LatentAnomalyLib.training.scan_cache import cache_path, store

ROOT = Path(__file__).resolve().parents[1]


def set_cases(name: str) -> list[Case]:
    """The cases of one named set from ../shared/data."""
    if name.startswith("ixi-"):
        return datasets.ixi_cases(name[4:])
    return {"other-sites": datasets.other_site_cases, "brats": datasets.brats_cases, "mslub": datasets.mslub_cases}[
        name
    ]()


def cache_folder(model: Model, name: str) -> Path:
    return ROOT / "runs" / "scan_cache" / f"{model.name}-{model.version}" / name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default="ixi-train,ixi-val")
    parser.add_argument("--model")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = Model.load(args.model)
    detector = Detector(model, DetectOptions(device="cpu"))
    for name in args.sets.split(","):
        cases = set_cases(name)
        for i, case in enumerate(cases, start=1):
            target = cache_path(cache_folder(model, name), case.case_id)
            if target.is_file():
                continue
            t = time.perf_counter()
            store(detector, case.images["t1"], target)
            print(f"{name} {i}/{len(cases)} {case.case_id} {time.perf_counter() - t:.1f}s", flush=True)


if __name__ == "__main__":
    main()
