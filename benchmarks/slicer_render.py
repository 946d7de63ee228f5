"""Render time per slice view of the Slicer module's offscreen pictures (Slicer's core libraries, no desktop app).

    python benchmarks/slicer_render.py [--scan PATH --results DIR] [--size 400] [--repeats 5]

Without ``--results`` it first runs ``latent-anomaly detect`` on ``--scan`` (default: the committed sample) into a
temporary folder. Then it loads scan, heatmap and label map into a scene built on ``slicer-core`` and renders the
axial, sagittal and coronal views ``--repeats`` times each with ``LatentAnomalyGUI.pictures`` (slice pipeline +
displayable managers, offscreen: EGL/Mesa without a display), printing the seconds per view (render + PNG write).
The first round also sets up the OpenGL context and is reported apart.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "LatentAnomaly"))

from LatentAnomalyGUI.logic import LatentAnomalyLogic  # noqa: E402
from LatentAnomalyGUI.pictures import VIEWS, SliceViewPictures  # noqa: E402
from LatentAnomalyGUI.review import ReviewTools, summary_of  # noqa: E402
from LatentAnomalyGUI.standalone import standalone_scene  # noqa: E402


def detect(scan: Path, out: Path) -> None:
    command = [sys.executable, "-m", "LatentAnomalyLib.cli", "detect", str(scan), "--out", str(out), "--device", "cpu"]
    subprocess.run(command, check=True, cwd=REPO, stdout=subprocess.DEVNULL)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scan", type=Path, default=REPO / "Testing" / "Data" / "IXI_sample_T1.nii.gz")
    parser.add_argument("--results", type=Path, help="folder detect wrote for --scan (default: run detect now)")
    parser.add_argument("--size", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temporary:
        results = args.results
        if results is None:
            results = Path(temporary) / "results"
            detect(args.scan, results)
        import vtk
        from LatentAnomalyGUI.detection import DetectionOutcome
        from LatentAnomalyGUI.results import load_summary
        from LatentAnomalyGUI.runner import RunStatus

        started = time.perf_counter()
        context = standalone_scene()
        logic = LatentAnomalyLogic(context.scene, context.applicationLogic)
        volume = logic.nodes.readVolume(args.scan, "scan")
        outcome = DetectionOutcome(RunStatus.SUCCEEDED, 0, results)
        outcome.summary = load_summary(outcome.summaryPath)
        heatmap, label = logic.loader.loadResults(outcome, volume)
        load_s = time.perf_counter() - started
        rows = ReviewTools.regionRows(label, summary_of(label))
        point = rows[0].ras if rows else None
        renderer = SliceViewPictures(context.scene, context.applicationLogic, (args.size, args.size))
        times: dict[str, list[float]] = {view: [] for view in VIEWS}
        first: list[float] = []
        for repeat in range(args.repeats + 1):
            for picture in renderer.render(temporary, volume, heatmap, label, logic.display.heatmapOpacity, point):
                (first if repeat == 0 else times[picture.orientation]).append(picture.seconds)
    from importlib.metadata import version

    from LatentAnomalyGUI.pictures import offscreen_render_window

    window = offscreen_render_window().GetClassName()
    print(f"scan {args.scan.name}, {args.size}x{args.size} px, {args.repeats} repeats after one warm-up round")
    print(f"{os.cpu_count()} CPU cores, {platform.processor() or platform.machine()}, python {platform.python_version()}, "
          f"slicer-core {version('slicer-core')}, vtk {vtk.vtkVersion.GetVTKVersion()}, {window}")
    print(f"scene + load results: {load_s:.2f} s; first round (OpenGL set-up): {', '.join(f'{s:.3f}' for s in first)} s")
    print()
    print("| view | median s | max s |")
    print("|---|---|---|")
    for view in VIEWS:
        print(f"| {view} | {statistics.median(times[view]):.3f} | {max(times[view]):.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
