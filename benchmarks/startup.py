"""Wall time of the `latent-anomaly` command from start to exit: help, info, an argument error, detect.

    python benchmarks/startup.py [--repeats 3] [--scan PATH] [--device cpu] [--checkout DIR]

Each command runs as a fresh child process (interpreter start, imports, work, exit), ``--repeats``
times; the table gives the median wall time, its range, and the median CPU time (user + system of
the child, less sensitive than wall time to other work on a shared machine). ``import`` rows time
what the commands import: the library's detection pipeline, and torch and monai on their own, for
reference. The default scan is the committed sample ``Testing/Data/IXI_sample_T1.nii.gz``.
``--checkout DIR`` runs another copy of the library instead (e.g. ``git archive <commit> | tar -x -C
DIR``), as ``python -m LatentAnomalyLib.cli`` in DIR with ``PYTHONPATH=DIR``, to compare two versions.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import machine

from LatentAnomalyLib.evaluation.outputs import markdown_table

REPO = Path(__file__).resolve().parents[1]


def command() -> list[str]:
    """The installed console script beside this interpreter, else ``python -m LatentAnomalyLib.cli``."""
    script = Path(sys.executable).with_name("latent-anomaly")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "LatentAnomalyLib.cli"]


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(argv: list[str], repeats: int, env: dict[str, str] | None, cwd: str | None) -> dict[str, float | str]:
    walls, cpus, codes = [], [], set()
    for _ in range(repeats):
        cpu, start = _children_cpu_s(), time.perf_counter()
        run = subprocess.run(argv, capture_output=True, text=True, check=False, env=env, cwd=cwd)
        walls.append(time.perf_counter() - start)
        cpus.append(_children_cpu_s() - cpu)
        codes.add(run.returncode)
    return {
        "median_s": statistics.median(walls),
        "min_s": min(walls),
        "max_s": max(walls),
        "cpu_s": statistics.median(cpus),
        "exit": ",".join(str(c) for c in sorted(codes)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--scan", default=str(REPO / "Testing" / "Data" / "IXI_sample_T1.nii.gz"))
    parser.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--checkout", help="run the library in this folder instead of the installed one")
    args = parser.parse_args()
    cli, env, cwd = command(), None, None
    if args.checkout:  # run from there too: ``python -m``/``-c`` put the working folder first on sys.path
        cwd = str(Path(args.checkout).resolve())
        cli = [sys.executable, "-m", "LatentAnomalyLib.cli"]
        env = {**os.environ, "PYTHONPATH": str(Path(args.checkout).resolve())}
    with tempfile.TemporaryDirectory() as tmp:
        cases = [
            ("latent-anomaly --help", [*cli, "--help"]),
            ("latent-anomaly info", [*cli, "info"]),
            ("latent-anomaly detect (argument error)", [*cli, "detect"]),
            (
                f"latent-anomaly detect {Path(args.scan).name}",
                [*cli, "detect", args.scan, "--out", tmp, "--overwrite", "--device", args.device, "--progress", "none"],
            ),
            ("import LatentAnomalyLib.pipeline", [sys.executable, "-c", "import LatentAnomalyLib.pipeline"]),
            ("import torch", [sys.executable, "-c", "import torch"]),
            ("import monai", [sys.executable, "-c", "import monai"]),
        ]
        rows = [{"command": name, **timed(argv, args.repeats, env, cwd)} for name, argv in cases]
    library = args.checkout or "installed LatentAnomalyLib"
    print(f"# Command start-up and wall time (median of {args.repeats} runs; {library})\n\n{machine()}\n")
    print(markdown_table(rows, ["command", "median_s", "min_s", "max_s", "cpu_s", "exit"]))


if __name__ == "__main__":
    main()
