"""The module on 3D Slicer's core libraries (pip ``slicer-core``): a real MRML scene, built here as desktop Slicer
builds it at start-up, and one detection on the committed sample shared by every test of the session.

Everything in this folder is marked ``mrml``. It is skipped, with the reason, only when ``import slicer`` fails.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

slicer = pytest.importorskip("slicer", reason="3D Slicer's core libraries are not installed (pip install -e .[slicer])")
vtk = pytest.importorskip("vtk")

from tests.slicer_gui import (  # noqa: E402
    BUNDLE,
    SAMPLE,
    DetectParameters,
    LatentAnomalyLogic,
    RunStatus,
    SubprocessRunner,
    detection,
)

SLICE_VIEWS = ("Red", "Yellow", "Green")


@dataclass
class Mrml:
    """A scene with its application logic, the module logic on it, and what keeps the logics alive."""

    scene: Any
    app: Any
    logic: Any
    keep: list[Any] = field(default_factory=list)


def build_scene() -> Mrml:
    """A scene as desktop Slicer makes it (the module's own ``standalone_scene``: colour, volumes and segmentations
    logics), plus the three slice views of the default layout."""
    from LatentAnomalyGUI.standalone import standalone_scene

    context = standalone_scene()
    scene, app = context.scene, context.applicationLogic
    keep: list[Any] = [context]
    slicer.vtkMRMLSliceNode.AddDefaultSliceOrientationPresets(scene)
    for name in SLICE_VIEWS:  # the Red, Yellow and Green views of the default layout, without their widgets
        sliceLogic = slicer.vtkMRMLSliceLogic()
        sliceLogic.SetMRMLApplicationLogic(app)
        sliceLogic.SetMRMLScene(scene)
        sliceNode = sliceLogic.AddSliceNode(name)
        sliceNode.SetOrientationToDefault()
        sliceLogic.ResizeSliceNode(256, 256)
        app.GetSliceLogics().AddItem(sliceLogic)
        keep.append(sliceLogic)
    logic = LatentAnomalyLogic(scene, app, runner=SubprocessRunner(), python=sys.executable)
    return Mrml(scene, app, logic, keep)


def node_ids(scene: Any) -> set[str]:
    return {scene.GetNthNode(i).GetID() for i in range(scene.GetNumberOfNodes())}


@pytest.fixture
def mrml() -> Iterator[Mrml]:
    context = build_scene()
    yield context
    context.logic.cleanup()


@dataclass
class SampleDetection:
    """The one detection of the session: its scene and nodes, the progress seen, a kept copy of its files."""

    context: Mrml
    inputVolume: Any
    outcome: Any
    progress: list[float]
    nodesBefore: set[str]
    files: Path


def calibrated_voxel_threshold() -> float:
    """The bundle's calibrated voxel threshold of its default scorer.

    Passed as the module's threshold, it gives the voxel-threshold label map (the CLI's ``--regions all``): the
    healthy sample has flagged regions there, which these tests need, while model 1.5.0's default label map
    (regions with p-value <= alpha) is empty on it.
    """
    from LatentAnomalyLib.bundle.contents import read
    from LatentAnomalyLib.bundle.format import Bundle

    contents = read(Bundle.load(BUNDLE))
    return float(contents.calibration(contents.config["default_scorer"])["voxel_threshold"])


@pytest.fixture(scope="session")
def sample_detection(tmp_path_factory) -> Iterator[SampleDetection]:
    """Detect on the committed sample through the module's own runner and the real CLI, out of process, once."""
    if not (BUNDLE / "manifest.json").is_file() or not SAMPLE.is_file():
        pytest.skip("needs the bundled model and Testing/Data/IXI_sample_T1.nii.gz")
    context = build_scene()
    inputVolume = context.logic.nodes.readVolume(SAMPLE, "IXI sample")
    before = node_ids(context.scene)
    progress: list[float] = []
    outcome = context.logic.detectAndWait(
        inputVolume,
        DetectParameters(device="cpu", threshold=calibrated_voxel_threshold()),
        timeout=600,
        onProgress=lambda f, s: progress.append(f),
    )
    assert outcome.succeeded, outcome.errorMessage + "\n" + outcome.log
    files = tmp_path_factory.mktemp("sample-detection")
    for path in (outcome.heatmapPath, outcome.labelmapPath, outcome.summaryPath):
        shutil.copy2(path, files / path.name)
    yield SampleDetection(context, inputVolume, outcome, progress, before, files)
    context.logic.cleanup()  # removes the run's temporary folder


def saved_outcome(sample: SampleDetection, folder: Path | None = None) -> Any:
    """An outcome pointing at the kept copy of the sample detection's files (or at ``folder``)."""
    outcome = detection.DetectionOutcome(RunStatus.SUCCEEDED, 0, folder or sample.files, sample.outcome.modelPath)
    outcome.summary = dict(sample.outcome.summary)
    return outcome


@dataclass
class Loaded:
    """A fresh scene with the sample as input and the shared detection's results loaded over it."""

    context: Mrml
    inputVolume: Any
    heatmap: Any
    label: Any
    outcome: Any


@pytest.fixture
def loaded(sample_detection, mrml) -> Loaded:
    inputVolume = mrml.logic.nodes.readVolume(SAMPLE, "IXI sample")
    outcome = saved_outcome(sample_detection)
    heatmap, label = mrml.logic.loader.loadResults(outcome, inputVolume)
    return Loaded(mrml, inputVolume, heatmap, label, outcome)
