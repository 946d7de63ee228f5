"""Wall time, peak resident memory and per-stage times of the whole `latent-anomaly detect` command.

    python benchmarks/speed_memory.py [--scan PATH] [--repeats 3] [--device cpu] [--model BUNDLE ...]

Runs the real command in a child process (imports, model loading and writing included) and polls
its resident memory with psutil; the default scan is a 240 x 240 x 155 1 mm BraTS T1.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
from common import machine, require_data

from LatentAnomalyLib.evaluation.outputs import markdown_table

STAGE_COLUMNS = (
    "scorer",
    "wall_s",
    "peak_rss_gb",
    "read",
    "load_model",
    "preprocess.brain_mask",
    "preprocess.registration",
    "preprocess.resample_normalise",
    "encode",
    "score",
    "postprocess",
    "map_to_scan",
    "write",
    "total",
)


def run_once(scan: Path, device: str, extra: list[str]) -> dict:
    with tempfile.TemporaryDirectory() as out:
        cmd = [
            sys.executable,
            "-m",
            "LatentAnomalyLib.cli",
            "detect",
            str(scan),
            "--out",
            out,
            "--device",
            device,
            "--progress",
            "none",
            *extra,
        ]
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        handle = psutil.Process(proc.pid)
        peak = 0
        while proc.poll() is None:
            try:
                peak = max(peak, handle.memory_info().rss)
            except psutil.NoSuchProcess:
                break
            time.sleep(0.05)
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            raise SystemExit(proc.stderr.read().decode())
        summary = json.loads((Path(out) / "summary.json").read_text())
    return {"wall_s": wall, "peak_rss_gb": peak / 1e9, **{k: v for k, v in summary["timings_s"].items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scan")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--scorer", action="append", default=[])
    parser.add_argument("--model", action="append", default=[], help="a bundle (repeatable; default: the bundled one)")
    args = parser.parse_args()
    scan = (
        Path(args.scan) if args.scan else require_data() / "brats2018/Brats18_CBICA_ABM_1/Brats18_CBICA_ABM_1_t1.nii.gz"
    )
    rows = []
    for i in range(args.repeats):  # the models take turns, so a slower spell of the machine hits each of them
        for model in args.model or [None]:
            for scorer in args.scorer or ["default"]:
                extra = ([] if scorer == "default" else ["--scorer", scorer]) + (["--model", model] if model else [])
                row = {"model": model or "bundled", "scorer": scorer, "run": i + 1, **run_once(scan, args.device, extra)}
                rows.append(row)
    print(f"`latent-anomaly detect {scan.name}` on {machine()}\n")
    print(markdown_table(rows, ("model", "scorer", "run", *STAGE_COLUMNS[1:])))


if __name__ == "__main__":
    main()
