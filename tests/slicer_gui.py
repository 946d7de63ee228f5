"""Shared by the Slicer-module tests: the module's Qt-free files imported by path, and sample data.

Importing this module must not import slicer, qt, vtk or ctk (checked by test_slicer_command.py).
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODULE_DIR = REPO / "LatentAnomaly"
GUI_DIR = MODULE_DIR / "LatentAnomalyGUI"
FORBIDDEN = ("slicer", "qt", "vtk", "ctk")

_already_loaded = {name for name in FORBIDDEN if name in sys.modules}
sys.path.insert(0, str(MODULE_DIR))
command = importlib.import_module("LatentAnomalyGUI.command")
progress = importlib.import_module("LatentAnomalyGUI.progress")
results = importlib.import_module("LatentAnomalyGUI.results")
runner_module = importlib.import_module("LatentAnomalyGUI.runner")
process_tree = importlib.import_module("LatentAnomalyGUI.process_tree")
logic_module = importlib.import_module("LatentAnomalyGUI.logic")
rethreshold = importlib.import_module("LatentAnomalyGUI.rethreshold")
display = importlib.import_module("LatentAnomalyGUI.display")
selftest = importlib.import_module("LatentAnomalyGUI.selftest")
dependencies = importlib.import_module("LatentAnomalyGUI.dependencies")
qt_runner = importlib.import_module("LatentAnomalyGUI.qt_runner")
regions = importlib.import_module("LatentAnomalyGUI.regions")
ground_truth = importlib.import_module("LatentAnomalyGUI.ground_truth")
review = importlib.import_module("LatentAnomalyGUI.review")
library_path = importlib.import_module("LatentAnomalyGUI.library_path")
detection = importlib.import_module("LatentAnomalyGUI.detection")
nodes = importlib.import_module("LatentAnomalyGUI.nodes")
scene_module = importlib.import_module("LatentAnomalyGUI.scene")
export = importlib.import_module("LatentAnomalyGUI.export")
host = importlib.import_module("LatentAnomalyGUI.host")
pictures = importlib.import_module("LatentAnomalyGUI.pictures")
standalone = importlib.import_module("LatentAnomalyGUI.standalone")

RunStatus = runner_module.RunStatus
RunResult = runner_module.RunResult
SubprocessRunner = runner_module.SubprocessRunner
LatentAnomalyLogic = logic_module.LatentAnomalyLogic
DetectParameters = logic_module.DetectParameters
POSIX = os.name == "posix"

BUNDLE = REPO / "models" / "latent-anomaly-t1"
SAMPLE = REPO / "Testing" / "Data" / "IXI_sample_T1.nii.gz"


SUMMARY = {
    "model": {"name": "latent-anomaly-t1", "version": "1.2.0", "scorer": "knn"},
    "subject_score": 3.456,
    "subject_threshold": 2.5,
    "subject_flagged": True,
    "voxel_threshold": 0.8125,
    "voxel_threshold_source": "p99.5 of healthy voxels",
    "brain_volume_ml": 1200.0,
    "flagged_volume_ml": 14.25,
    "flagged_fraction_of_brain": 14.25 / 1200.0,
    "n_components": 4,
    "components": [
        {"id": 2, "volume_ml": 3.0, "centroid_ras_mm": [-20.04, 5.0, 30.0], "peak_score": 1.5, "mean_score": 1.0},
        {"id": 1, "volume_ml": 10.0, "centroid_ras_mm": [12.34, -40.06, 22.0], "peak_score": 2.75, "mean_score": 1.2},
        {"id": 4, "volume_ml": 0.25, "centroid_ras_mm": [1.0, 2.0, 3.0], "peak_score": 0.9, "mean_score": 0.85},
        {"id": 3, "volume_ml": 1.0, "centroid_ras_mm": [0.0, 0.0, 0.0], "peak_score": 1.1, "mean_score": 0.9},
    ],
    "timings_s": {"total": 12.3},
    "messages": ["the scan was not skull-stripped; a brain mask was computed"],
}
