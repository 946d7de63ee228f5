"""How well the latent outlier criterion (``latent-anomaly train --outlier-removal``,
:mod:`LatentAnomalyLib.training.latent_outliers`) separates injected lesion scans from healthy ones in an impure
training set, measured without retraining an encoder.

Training sets: 32 healthy IXI scans the bundled model never fitted on (the 20 validation scans and the first 12 of
the test split) plus the T1 of the first 1, 2 or 4 BraTS cases sorted by id (3.0%, 5.9%, 11.1%: the injected set
of the reduced study in docs/encoders.md; the BraTS cases reported there, the other 10, and MSLUB are never
injected), and the clean 32. For each set, exactly what the outliers stage runs: the bundled model's detection,
its default scorer cross-fitted in 5 folds over the set, each scan's largest region peak, the robust z-score rule
(z > 3.5). Printed: injected and healthy scans removed, and each injected scan's rank and z-score.

    python benchmarks/latent_outlier_criterion.py [--cache runs/outlier_criterion]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine, require_data
from LatentAnomalyLib import DEFAULT_SEED
from LatentAnomalyLib.bundle.model import Model
from LatentAnomalyLib.evaluation import datasets
from LatentAnomalyLib.pipeline import DetectOptions, Detector
from LatentAnomalyLib.training.crossfit import crossfit_scans
from LatentAnomalyLib.training.latent_outliers import DEFAULT_Z, decide, largest_region_peaks
from LatentAnomalyLib.training.scan_cache import cached

LEVELS = (0, 1, 2, 4)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", default="runs/outlier_criterion", help="encoded scans and fold work files")
    args = parser.parse_args()
    root = require_data()
    work = Path(args.cache)
    model = Model.load()
    name = model.default_scorer
    detector = Detector(model, DetectOptions(scorer=name, device="cpu"))
    healthy = datasets.ixi_cases("val") + datasets.ixi_cases("test")[:12]
    brats = sorted(p for p in (root / "brats2018").iterdir() if p.is_dir())[: max(LEVELS)]
    t = time.time()
    scans = {c.case_id: cached(detector, work / "scans", c.case_id, c.images["t1"]) for c in healthy}
    injected = {p.name: cached(detector, work / "scans", p.name, p / f"{p.name}_t1.nii.gz") for p in brats}
    print(f"# {machine()}; {len(scans)} healthy + {len(injected)} BraTS scans encoded in {time.time() - t:.0f}s")
    rows, out = [], {}
    for n in LEVELS:
        t = time.time()
        chosen = list(injected)[:n]
        members = [("train", s) for s in scans.values()] + [("train", injected[i]) for i in chosen]
        records = crossfit_scans(model, name, members, work / f"inject{n}", 5, DEFAULT_SEED, log=lambda s: None)
        decision = decide(largest_region_peaks(records), DEFAULT_Z)
        removed = set(decision["removed"])
        order = sorted(decision["statistic"], key=lambda i: -decision["statistic"][i])
        detail = "; ".join(f"{i} rank {order.index(i) + 1}/{len(order)} z {decision['robust_z'][i]:.1f}" for i in chosen)
        healthy_removed = sorted(removed - set(chosen))
        rows.append(
            f"| {n} | {100 * n / len(members):.1f}% | {len(removed & set(chosen))}/{n} | "
            f"{len(healthy_removed)}/{len(scans)} | {detail or '-'} |"
        )
        out[str(n)] = {**decision, "injected": chosen, "seconds": round(time.time() - t, 1)}
        print(f"# level {n}: {time.time() - t:.0f}s; healthy removed: {', '.join(healthy_removed) or 'none'}", flush=True)
    (work / "results.json").write_text(json.dumps(out, indent=1))
    print("| injected | share | injected removed | healthy removed | injected scans: rank by statistic, robust z |")
    print("|---|---|---|---|---|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
