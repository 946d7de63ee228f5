"""Cohort scaling: scans per minute of `latent-anomaly batch` with 1 and 2 workers, local processes against Dask.

    python benchmarks/cohort_scaling.py [--scans 8] [--workers 1 2] [--out results/cohort_scaling]

The cohort is the first ``--scans`` IXI T1 scans of ../shared/data (LATENT_ANOMALY_DATA), or copies of the
committed IXI sample when the shared data is absent. For each worker count the real command runs in a child
process twice, ``--workers N`` and ``--scheduler local:N`` (fresh output folders, nothing resumed), and the
wall time covers everything a user waits for: start, model loads, the cluster's start for Dask. Prints a
table: scans per minute, speed-up against 1 worker of the same kind, Dask's overhead against ``--workers``
at the same N, and the median seconds one scan took in a worker (the per-scan cost docs/cluster.md plans with).
"""

from __future__ import annotations

import argparse
import csv
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from common import machine

from LatentAnomalyLib.evaluation import datasets
from LatentAnomalyLib.evaluation.outputs import markdown_table

SAMPLE = Path(__file__).resolve().parents[1] / "Testing" / "Data" / "IXI_sample_T1.nii.gz"


def cohort(folder: Path, count: int) -> tuple[Path, str]:
    """A folder of ``count`` scans (links to the shared IXI scans, or copies of the sample) and what they are."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    shared = sorted((datasets.data_root() / "ixi-t1" / "t1").glob("*.nii.gz"))[:count]
    if len(shared) == count:
        for path in shared:
            (folder / path.name).symlink_to(path)
        return folder, f"{count} IXI T1 scans of the shared data (2 mm, with skull)"
    for k in range(count):
        shutil.copy(SAMPLE, folder / f"sample{k:03d}.nii.gz")
    return folder, f"{count} copies of the committed IXI sample (2 mm, with skull)"


def run(scans: Path, out: Path, option: list[str]) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    command = [sys.executable, "-m", "LatentAnomalyLib.cli", "batch", str(scans), "--out", str(out)]
    command += ["--device", "cpu", "--progress", "none", "--export", "none", *option]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - start
    rows = list(csv.DictReader((out / "scores.csv").read_text().splitlines())) if done.returncode == 0 else []
    ok = [r for r in rows if r["status"] == "done"]
    return {
        "backend": " ".join(option),
        "scans": len(rows),
        "failed": len(rows) - len(ok),
        "wall_s": wall,
        "scans_per_min": 60 * len(ok) / wall,
        "median_scan_s": statistics.median(float(r["seconds"]) for r in ok) if ok else None,
        "exit": f"{done.returncode} {done.stderr.strip().splitlines()[-1] if done.returncode else ''}".strip(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scans", type=int, default=8)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--out", default="results/cohort_scaling")
    args = parser.parse_args()
    root = Path(args.out)
    scans, what = cohort(root / "scans", args.scans)
    rows = []
    for workers in args.workers:
        for option in (["--workers", str(workers)], ["--scheduler", f"local:{workers}"]):
            rows.append(run(scans, root / f"{option[0].strip('-')}{workers}", option))
            rows[-1]["workers"] = workers
            print(f"{rows[-1]['backend']}: {rows[-1]['wall_s']:.0f} s, exit {rows[-1]['exit']}", flush=True)
    for row in rows:
        kind = row["backend"].split()[0]
        one = next((r for r in rows if r["backend"].split()[0] == kind and r["workers"] == 1), None)
        local = next(r for r in rows if r["backend"] == f"--workers {row['workers']}")
        row["speedup_vs_1"] = row["scans_per_min"] / one["scans_per_min"] if one else None
        row["vs_workers_same_n"] = row["scans_per_min"] / local["scans_per_min"]
    print(f"\n`latent-anomaly batch` over {what}, measured on {machine()}\n")
    columns = ("backend", "scans", "failed", "wall_s", "scans_per_min", "speedup_vs_1", "vs_workers_same_n",
               "median_scan_s")
    print(markdown_table(rows, columns))


if __name__ == "__main__":
    main()
