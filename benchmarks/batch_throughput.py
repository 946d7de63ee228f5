"""Cohort throughput: `latent-anomaly batch` over the 148 IXI T1 scans and the 14 BraTS T1 scans.

    python benchmarks/batch_throughput.py [--workers 1 2] [--out results/batch]

For each worker count the real command runs in a child process (fresh output folder, so nothing is
resumed); its process tree is polled for resident memory. Prints scans per minute, the peak memory
of the main process and of each worker, and the subject-level AUROC of the ranking (BraTS tumour
scans should rank above the healthy IXI scans; IXI train and validation scans are included, so this
AUROC is optimistic for IXI, whose test split alone is in run_benchmark.py).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psutil
from common import machine, require_data

from LatentAnomalyLib.evaluation.metrics import subject_metrics
from LatentAnomalyLib.evaluation.outputs import markdown_table


def cohort_list(root: Path, destination: Path) -> Path:
    paths = sorted((root / "ixi-t1" / "t1").glob("*.nii.gz")) + sorted((root / "brats2018").glob("*/*_t1.nii.gz"))
    destination.parent.mkdir(parents=True, exist_ok=True)
    destination.write_text("path\n" + "".join(f"{p}\n" for p in paths))
    return destination


def run_batch(listing: Path, out: Path, workers: int, device: str) -> dict:
    if out.exists():
        shutil.rmtree(out)
    cmd = [sys.executable, "-m", "LatentAnomalyLib.cli", "batch", str(listing), "--out", str(out)]
    cmd += ["--workers", str(workers), "--device", device, "--progress", "none", "--export", "flagged"]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    main = psutil.Process(proc.pid)
    peaks: dict[int, int] = {}
    while proc.poll() is None:
        try:
            for p in [main, *main.children(recursive=True)]:
                with contextlib.suppress(psutil.NoSuchProcess):
                    peaks[p.pid] = max(peaks.get(p.pid, 0), p.memory_info().rss)
        except psutil.NoSuchProcess:
            break
        time.sleep(0.2)
    wall = time.perf_counter() - start
    stderr = proc.stderr.read().decode()
    rows = list(csv.DictReader((out / "scores.csv").read_text().splitlines()))
    done = [r for r in rows if r["status"].startswith("done")]
    lesion = ["brats2018" in r["path"] for r in done]
    metrics = subject_metrics([float(r["subject_score"]) for r in done], lesion)
    worker_peaks = [v for pid, v in peaks.items() if pid != proc.pid]
    return {
        "workers": workers,
        "scans": len(rows),
        "failed": len(rows) - len(done),
        "wall_s": wall,
        "scans_per_min": 60 * len(done) / wall,
        "main_peak_gb": peaks.get(proc.pid, 0) / 1e9,
        "worker_peak_gb": max(worker_peaks) / 1e9 if worker_peaks else None,
        "flagged_ixi": sum(r["flagged"] == "yes" for r in done if "ixi-t1" in r["path"]),
        "flagged_brats": sum(r["flagged"] == "yes" for r in done if "brats2018" in r["path"]),
        "subject_auroc": metrics["auroc"],
        "subject_ap": metrics["average_precision"],
        "exit": proc.returncode,
        "stderr_tail": stderr.strip().splitlines()[-1:] if stderr.strip() else [],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--out", default="results/batch")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    root = require_data()
    listing = cohort_list(root, Path(args.out) / "cohort.csv")
    rows = []
    for workers in args.workers:
        rows.append(run_batch(listing, Path(args.out) / f"workers{workers}", workers, args.device))
        print(f"workers {workers}: {rows[-1]['wall_s']:.0f} s, exit {rows[-1]['exit']} {rows[-1]['stderr_tail']}")
    print(f"\n`latent-anomaly batch` over 148 IXI T1 + 14 BraTS T1, measured on {machine()}\n")
    columns = (
        "workers",
        "scans",
        "failed",
        "wall_s",
        "scans_per_min",
        "main_peak_gb",
        "worker_peak_gb",
        "flagged_ixi",
        "flagged_brats",
        "subject_auroc",
        "subject_ap",
    )
    print(markdown_table(rows, columns))


if __name__ == "__main__":
    main()
