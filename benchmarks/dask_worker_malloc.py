"""Why Dask workers undo the nanny's MALLOC_TRIM_THRESHOLD_: one scan's cost in a plain process and in Dask workers.

    python benchmarks/dask_worker_malloc.py [--scans 2]

Runs `process_case` on the committed IXI sample ``--scans`` times in this process, in a `LocalCluster` worker as
Dask starts it (``MALLOC_TRIM_THRESHOLD_=65536``), and in such a worker after ``dask_scan.undo_malloc_trim()``.
Prints wall seconds, user and system CPU seconds and minor page faults per scan (CPU time and page faults are
what the malloc setting changes; wall time also moves with the machine's load).
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

from common import machine

from LatentAnomalyLib.evaluation.outputs import markdown_table

SAMPLE = Path(__file__).resolve().parents[1] / "Testing" / "Data" / "IXI_sample_T1.nii.gz"


def scans(count: int, undo: bool) -> list[dict]:
    """Runs where it is called (this process or a worker): the sample ``count`` times, one row per scan."""
    from LatentAnomalyLib.cohort import dask_scan, workers
    from LatentAnomalyLib.cohort.inputs import batch_case

    if undo:
        dask_scan.undo_malloc_trim()
    workers.init_worker(None, 1)
    out = tempfile.mkdtemp(prefix="malloc-bench-")
    rows = []
    for k in range(count):
        before, start = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        workers.process_case(batch_case(f"s{k}", str(SAMPLE)), workers.CaseOptions(out=out, device="cpu", export="none"))
        after = resource.getrusage(resource.RUSAGE_SELF)
        rows.append({"wall_s": time.perf_counter() - start, "user_s": after.ru_utime - before.ru_utime,
                     "system_s": after.ru_stime - before.ru_stime, "minor_faults": after.ru_minflt - before.ru_minflt,
                     "MALLOC_TRIM_THRESHOLD_": os.environ.get("MALLOC_TRIM_THRESHOLD_", "unset")})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scans", type=int, default=2)
    args = parser.parse_args()
    from distributed import Client, LocalCluster

    table = [{"where": "plain process", **row} for row in scans(args.scans, undo=False)]
    for undo in (False, True):
        with LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=None) as cluster, Client(cluster) as client:
            rows = client.submit(scans, args.scans, undo, pure=False).result()
        where = "Dask worker, malloc undone" if undo else "Dask worker as started"
        table += [{"where": where, **row} for row in rows]
    print(f"\nOne IXI sample scan per row, measured on {machine()}\n")
    print(markdown_table(table, ("where", "MALLOC_TRIM_THRESHOLD_", "wall_s", "user_s", "system_s", "minor_faults")))


if __name__ == "__main__":
    main()
