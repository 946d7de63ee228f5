"""Slicer module without Slicer: what it imports, the CLI call it builds, progress parsing, results text."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.slicer_gui import (
    REPO,
    SUMMARY,
    LatentAnomalyLogic,
    command,
    progress,
    results,
    review,
)


def test_pure_modules_import_without_slicer_or_qt():
    # In a fresh interpreter: the mrml tests of the same session import slicer and vtk on purpose.
    check = (
        "import sys; import tests.slicer_gui as g; "
        "print([n for n in g.FORBIDDEN if n in sys.modules]); print(g.LatentAnomalyLogic.__mro__[-2].__name__)"
    )
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, cwd=REPO, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["[]", "StandaloneLogic"]
    # Composed of parts, not mixins: the scene methods live on the parts, each given the logic's scene.
    logic = LatentAnomalyLogic(runner=object())
    assert not any(base.__name__.endswith("Mixin") for base in LatentAnomalyLogic.__mro__)
    assert isinstance(logic.review, review.ReviewTools) and logic.review.nodes is logic.nodes
    assert logic.display is logic.review.display is logic.loader.display and logic.scene is None


# ----- command building --------------------------------------------------------------------------


def test_detect_command_defaults():
    args = command.build_detect_command("/sl/PythonSlicer", "/data/in.nrrd", "/tmp/out")
    assert args == [
        "/sl/PythonSlicer",
        "-m",
        "LatentAnomalyLib.cli",
        "detect",
        "/data/in.nrrd",
        "--out",
        "/tmp/out",
        "--progress",
        "lines",
        "--device",
        "auto",
        "--skull",
        "auto",
    ]


def test_detect_command_all_options():
    args = command.build_detect_command(
        Path("/sl/PythonSlicer"),
        Path("/data/in.nrrd"),
        Path("/tmp/out"),
        model_dir=Path("/models/m1"),
        scorer=" knn ",
        device="cuda",
        skull="stripped",
        threshold=np.float32(0.25),
    )
    assert args == [
        "/sl/PythonSlicer",
        "-m",
        "LatentAnomalyLib.cli",
        "detect",
        "/data/in.nrrd",
        "--out",
        "/tmp/out",
        "--progress",
        "lines",
        "--device",
        "cuda",
        "--skull",
        "stripped",
        "--model",
        "/models/m1",
        "--scorer",
        "knn",
        "--threshold",
        "0.25",
    ]


def test_detect_command_is_accepted_by_the_library_parser():
    from LatentAnomalyLib.cli.main import build_parser

    args = command.build_detect_command(
        "py", "-scan.nii.gz", "out dir", model_dir="m", scorer="ocsvm", device="cpu", skull="skull", threshold=1.5
    )
    parsed = build_parser().parse_args(args[3:])
    assert (parsed.command, parsed.input, parsed.out, parsed.model, parsed.scorer) == (
        "detect",
        os.path.join(".", "-scan.nii.gz"),
        "out dir",
        "m",
        "ocsvm",
    )
    assert (parsed.device, parsed.skull, parsed.threshold, parsed.progress) == ("cpu", "skull", 1.5, "lines")


def test_empty_optional_values_mean_model_defaults():
    args = command.build_detect_command("py", "in.nii", "out", model_dir="", scorer="  ", threshold=None)
    assert "--model" not in args and "--scorer" not in args and "--threshold" not in args


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"device": "gpu"}, "device must be one of auto, cpu, cuda"),
        ({"skull": "maybe"}, "skull mode must be one of"),
        ({"threshold": float("nan")}, "finite"),
        ({"threshold": math.inf}, "finite"),
        ({"threshold": 0.0}, "above 0"),
        ({"threshold": -1.5}, "above 0"),
        ({"threshold": "0.5"}, "must be a number"),
        ({"threshold": True}, "must be a number"),
        ({"scorer": "k nn"}, "scorer name"),
        ({"scorer": "--threshold"}, "scorer name"),
    ],
)
def test_detect_command_validation(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        command.build_detect_command("py", "in.nii", "out", **kwargs)


@pytest.mark.parametrize("missing", ["input_path", "output_dir"])
def test_detect_command_requires_paths(missing):
    values = {"input_path": "in.nii", "output_dir": "out", missing: "  "}
    with pytest.raises(ValueError, match="empty"):
        command.build_detect_command("py", **values)


def test_info_command():
    assert command.build_info_command("py") == ["py", "-m", "LatentAnomalyLib.cli", "info", "--json"]
    assert command.build_info_command("py", "/m") == [
        "py",
        "-m",
        "LatentAnomalyLib.cli",
        "info",
        "--model",
        "/m",
        "--json",
    ]


def test_cli_environment_puts_library_first_and_keeps_base():
    base = {"PYTHONPATH": os.pathsep.join(["/lib", "/other"]), "HOME": "/h"}
    env = command.cli_environment("/lib", base)
    assert env["PYTHONPATH"] == os.pathsep.join(["/lib", "/other"])
    assert env["PYTHONUNBUFFERED"] == "1" and env["HOME"] == "/h"
    assert command.cli_environment("/new", {})["PYTHONPATH"] == "/new"
    assert base == {"PYTHONPATH": os.pathsep.join(["/lib", "/other"]), "HOME": "/h"}


# ----- progress ----------------------------------------------------------------------------------


def test_progress_tracker_handles_lines_split_across_chunks():
    seen = []
    tracker = progress.ProgressTracker(lambda fraction, stage: seen.append((fraction, stage)))
    for chunk in ["PROG", "RESS 10 re", "ad\r\nPROGRESS 45 encode", "\n", "PROGRESS 100 map to scan"]:
        tracker.feed(chunk)
    assert seen == [(0.1, "read"), (0.45, "encode")]
    tracker.finish()
    assert seen[-1] == (1.0, "map to scan")
    assert (tracker.fraction, tracker.stage) == (1.0, "map to scan")


def test_progress_tracker_collects_errors_notes_and_ignores_noise():
    seen = []
    tracker = progress.ProgressTracker(lambda f, s: seen.append((f, s)))
    tracker.feed("Loading model...\nPROGRESS abc read\nnote: CUDA not available; using the CPU\n")
    tracker.feed("PROGRESS 20 preprocess\nerror: scan.nii: not a 3D image\n")
    tracker.finish()
    assert seen == [(0.2, "preprocess")]
    assert tracker.notes == ["CUDA not available; using the CPU"]
    assert tracker.error_message == "scan.nii: not a 3D image"
    assert tracker.failure_message(2) == "scan.nii: not a 3D image"
    assert "Loading model..." in tracker.log and "PROGRESS 20" not in tracker.log


def test_progress_tracker_failure_message_without_error_line():
    tracker = progress.ProgressTracker()
    assert "without output" in tracker.failure_message(-9)
    tracker.feed("Traceback (most recent call last):\nMemoryError")
    tracker.finish()
    assert tracker.failure_message(1) == "the detection process failed (exit code 1); last output: MemoryError"


# ----- results text ------------------------------------------------------------------------------


def test_format_summary():
    text = results.format_summary(SUMMARY)
    lines = text.splitlines()
    assert lines[0] == "Model: latent-anomaly-t1 1.2.0 (scorer knn)"
    assert lines[1] == "Subject score 3.46 vs threshold 2.50: ABOVE the healthy range"
    assert lines[2] == "Voxel threshold 0.812 (p99.5 of healthy voxels)"
    assert lines[3] == "Flagged volume 14.2 mL (1.19% of brain) in 4 regions"
    assert lines[4] == "Largest regions:"
    assert lines[5] == "  1. 10.00 mL at RAS (12.3, -40.1, 22.0) mm, peak 2.75"
    assert lines[6].startswith("  2. 3.00 mL") and lines[7].startswith("  3. 1.00 mL")
    assert "0.25 mL" not in text
    assert "Note: the scan was not skull-stripped" in text
    assert lines[-1] == results.DISCLAIMER


def test_format_summary_without_regions_or_flag():
    summary = {
        **SUMMARY,
        "subject_flagged": None,
        "subject_score": 1.0,
        "n_components": 0,
        "components": [],
        "flagged_volume_ml": 0.0,
        "messages": [],
    }
    text = results.format_summary(summary)
    assert "within the healthy range" in text
    assert "in 0 regions" in text and "Largest" not in text


def test_load_summary(tmp_path):
    path = tmp_path / "summary.json"
    path.write_text(json.dumps(SUMMARY))
    assert results.load_summary(path) == SUMMARY
    with pytest.raises(ValueError, match="no summary was written"):
        results.load_summary(tmp_path / "missing.json")
    path.write_text("{not json")
    with pytest.raises(ValueError, match="cannot read the summary"):
        results.load_summary(path)
    path.write_text(json.dumps({"model": {}}))
    with pytest.raises(ValueError, match="lacks subject_score"):
        results.load_summary(path)


def test_format_model_info():
    info = {
        "name": "m",
        "version": "2",
        "scorers": ["knn", "gaussian"],
        "default_scorer": "gaussian",
        "thresholds": {"knn": {"voxel": 0.5, "subject": 1.25, "rule": "p99"}},
    }
    text = results.format_model_info(info)
    assert text.splitlines() == [
        "Model: m 2",
        "Scorers: knn, gaussian (default)",
        "  knn: voxel threshold 0.500 (p99), subject threshold 1.250",
    ]


def test_alpha_and_age_reach_the_command_line_and_the_library_parser():
    from LatentAnomalyLib.cli.main import build_parser

    plain = command.build_detect_command("py", "in.nii", "out")
    assert "--alpha" not in plain and "--age" not in plain  # the command line's defaults: 0.05, no age
    args = command.build_detect_command("py", "in.nii", "out", alpha=0.1, age=67.0)
    parsed = build_parser().parse_args(args[3:])
    assert (parsed.alpha, parsed.age) == (0.1, 67.0)
    assert command.build_detect_command("py", "in.nii", "out", age=0.0)[-2:] == ["--age", "0.0"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"alpha": 0.0}, "alpha must be a number strictly between 0 and 1"),
        ({"alpha": 1.0}, "alpha must be a number strictly between 0 and 1"),
        ({"alpha": float("nan")}, "alpha must be a number strictly between 0 and 1"),
        ({"alpha": "0.1"}, "alpha must be a number, got '0.1'"),
        ({"age": -1.0}, "age must be a number from 0 to 130"),
        ({"age": 131.0}, "age must be a number from 0 to 130"),
        ({"age": True}, "age must be a number, got True"),
    ],
)
def test_alpha_and_age_validation(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        command.build_detect_command("py", "in.nii", "out", **kwargs)
