"""The module outside the desktop app: an MRML scene on Slicer's core libraries, and pictures of results files.

``standalone_scene()`` builds what desktop Slicer builds at start-up and the module's logic needs: a scene, an
application logic with its colour logic registered as "Colors" (display nodes need it), empty slice and view logic
collections, and volumes and segmentations logics on the same scene. ``python -m LatentAnomalyGUI.standalone SCAN
OUTPUT_DIR PICTURES_DIR`` (``LatentAnomaly/`` on ``PYTHONPATH``, ``slicer-core`` installed) loads a scan and the
heatmap, label map and summary that ``latent-anomaly detect`` wrote for it, and renders the three slice views.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class StandaloneScene:
    """A scene and the logics that keep it working (hold on to this object while the scene is used)."""

    scene: Any
    applicationLogic: Any
    volumesLogic: Any
    segmentationsLogic: Any


def standalone_scene() -> StandaloneScene:
    """A ``vtkMRMLScene`` set up like desktop Slicer's, as far as the module needs."""
    import slicer
    import vtk

    scene = slicer.vtkMRMLScene()
    application = slicer.vtkSlicerApplicationLogic()
    application.SetMRMLScene(scene)
    colors = application.GetColorLogic()
    colors.SetMRMLScene(scene)
    colors.AddDefaultColorNodes()
    application.SetModuleLogic("Colors", colors)
    application.SetSliceLogics(vtk.vtkCollection())
    application.SetViewLogics(vtk.vtkCollection())
    logics = []
    for name, logic in (
        ("Volumes", slicer.vtkSlicerVolumesLogic()),
        ("Segmentations", slicer.vtkSlicerSegmentationsModuleLogic()),
    ):
        logic.SetMRMLScene(scene)
        logic.SetMRMLApplicationLogic(application)
        application.SetModuleLogic(name, logic)
        logics.append(logic)
    return StandaloneScene(scene, application, *logics)


def render_result_files(
    scan: Path,
    outputDir: Path,
    picturesDir: Path,
    size: int = 400,
    opacity: float | None = None,
    region: int = 1,
) -> list[Any]:
    """Load ``scan`` and detect's results from ``outputDir`` into a new scene and render the three slice views.

    The slices pass through the centroid of flagged region number ``region`` in the region table (1: the largest;
    the volume centre when nothing was flagged).
    """
    from .detection import DetectionOutcome
    from .logic import LatentAnomalyLogic
    from .pictures import SliceViewPictures
    from .results import load_summary
    from .review import ReviewTools
    from .runner import RunStatus

    context = standalone_scene()
    logic = LatentAnomalyLogic(context.scene, context.applicationLogic)
    if opacity is not None:
        logic.display.heatmapOpacity = float(opacity)
    volume = logic.nodes.readVolume(scan, Path(scan).name.split(".")[0])
    outcome = DetectionOutcome(RunStatus.SUCCEEDED, 0, Path(outputDir))
    outcome.summary = load_summary(outcome.summaryPath)
    heatmap, label = logic.loader.loadResults(outcome, volume)
    rows = ReviewTools.regionRows(label, outcome.summary)
    if rows and not 1 <= region <= len(rows):
        raise ValueError(f"region {region} is not in the region table (1..{len(rows)})")
    point = rows[region - 1].ras if rows else None
    pictures = SliceViewPictures(context.scene, context.applicationLogic, (size, size))
    return pictures.render(picturesDir, volume, heatmap, label, logic.display.heatmapOpacity, point)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m LatentAnomalyGUI.standalone", description=__doc__.split("\n")[0])
    parser.add_argument("scan", type=Path)
    parser.add_argument("output_dir", type=Path, help="the folder latent-anomaly detect wrote for this scan")
    parser.add_argument("pictures_dir", type=Path)
    parser.add_argument("--size", type=int, default=400, help="pixels per side of each view (default 400)")
    parser.add_argument("--montage", type=Path, help="also write the three views side by side to this PNG")
    parser.add_argument("--region", type=int, default=1, help="slices through this region of the table (default 1)")
    args = parser.parse_args(argv)
    from .pictures import montage

    rendered = render_result_files(args.scan, args.output_dir, args.pictures_dir, args.size, region=args.region)
    for picture in rendered:
        print(json.dumps({"view": picture.orientation, "png": str(picture.path), "seconds": round(picture.seconds, 3)}))
    if args.montage is not None:
        print(json.dumps({"montage": str(montage(rendered, args.montage))}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
