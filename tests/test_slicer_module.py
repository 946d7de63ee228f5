"""Tests of the Slicer module's pure-Python parts, without Slicer, Qt, VTK or CTK.

The non-Qt modules under ``LatentAnomaly/LatentAnomalyGUI`` are imported by path. Files that need
Slicer (``LatentAnomaly.py``, ``widget.py``, ``parameters.py``, ``qt_runner.py``'s runtime) are only
parsed with ``ast`` and cross-checked against the .ui file and the CMake lists.
"""

from __future__ import annotations

import ast
import importlib
import json
import math
import os
import re
import shutil
import stat
import struct
import subprocess
import sys
import textwrap
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

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

RunStatus = runner_module.RunStatus
RunResult = runner_module.RunResult
SubprocessRunner = runner_module.SubprocessRunner
LatentAnomalyLogic = logic_module.LatentAnomalyLogic
DetectParameters = logic_module.DetectParameters
POSIX = os.name == "posix"


def test_pure_modules_import_without_slicer_or_qt():
    newly_loaded = {name for name in FORBIDDEN if name in sys.modules} - _already_loaded
    assert newly_loaded == set()
    assert LatentAnomalyLogic.__mro__[-2].__name__ == "StandaloneLogic"
    assert issubclass(LatentAnomalyLogic, review.ReviewMixin)


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
    from LatentAnomalyLib.cli import build_parser

    args = command.build_detect_command(
        "py", "-scan.nii.gz", "out dir", model_dir="m", scorer="ocsvm", device="cpu", skull="skull", threshold=-1.5
    )
    parsed = build_parser().parse_args(args[3:])
    assert (parsed.command, parsed.input, parsed.out, parsed.model, parsed.scorer) == (
        "detect",
        os.path.join(".", "-scan.nii.gz"),
        "out dir",
        "m",
        "ocsvm",
    )
    assert (parsed.device, parsed.skull, parsed.threshold, parsed.progress) == ("cpu", "skull", -1.5, "lines")


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


# ----- process runner ----------------------------------------------------------------------------


def _run(script: str, timeout: float = 30.0):
    runner = SubprocessRunner()
    chunks: list[str] = []
    finished: list = []
    tracker = progress.ProgressTracker()
    seen: list = []
    tracker.on_progress = lambda f, s: seen.append((f, s))

    def on_output(text):
        chunks.append(text)
        tracker.feed(text)

    runner.start([sys.executable, "-c", textwrap.dedent(script)], on_output, finished.append)
    assert runner.wait(timeout)
    tracker.finish()
    return runner, "".join(chunks), finished, tracker, seen


def test_subprocess_runner_success():
    runner, output, finished, _, seen = _run("""
        import sys
        print("PROGRESS 10 read", file=sys.stderr, flush=True)
        print("PROGRESS 100 done", file=sys.stderr, flush=True)
        print("hello")
    """)
    assert finished == [RunResult(RunStatus.SUCCEEDED, 0)]
    assert seen == [(0.1, "read"), (1.0, "done")]
    assert "hello" in output
    assert not runner.is_running()


def test_subprocess_runner_failure_reports_error_line():
    _, _, finished, tracker, _ = _run("""
        import sys
        print("PROGRESS 5 read", file=sys.stderr, flush=True)
        print("error: in.nii: no such file", file=sys.stderr)
        sys.exit(2)
    """)
    assert finished == [RunResult(RunStatus.FAILED, 2)]
    assert tracker.error_message == "in.nii: no such file"


def test_subprocess_runner_cannot_start():
    runner = SubprocessRunner()
    finished = []
    runner.start(["/nonexistent/PythonSlicer", "-m", "x"], lambda text: None, finished.append)
    assert len(finished) == 1 and finished[0].status is RunStatus.FAILED and finished[0].exit_code is None
    assert "could not start /nonexistent/PythonSlicer" in finished[0].message
    assert not runner.is_running() and runner.wait(1)


def _wait_until(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


SPAWNING_SCRIPT = """
    import subprocess, sys, time
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    print(f"CHILD {child.pid}", flush=True)
    print("PROGRESS 10 read", file=sys.stderr, flush=True)
    time.sleep(120)
"""


def test_subprocess_runner_cancel_kills_the_process_tree():
    runner = SubprocessRunner()
    output: list[str] = []
    finished: list = []
    runner.start([sys.executable, "-c", textwrap.dedent(SPAWNING_SCRIPT)], output.append, finished.append)
    assert _wait_until(lambda: "PROGRESS 10" in "".join(output), 20), "".join(output)
    child = int(re.search(r"CHILD (\d+)", "".join(output)).group(1))
    assert process_tree.is_alive(child)
    with pytest.raises(RuntimeError, match="already running"):
        runner.start([sys.executable, "-c", "pass"], output.append, finished.append)

    started = time.monotonic()
    runner.cancel()
    assert runner.wait(5), "cancel did not end the run"
    assert time.monotonic() - started < 3
    assert len(finished) == 1 and finished[0].status is RunStatus.CANCELLED
    assert _wait_until(lambda: not process_tree.is_alive(child), 5), f"child {child} survived cancel()"
    runner.cancel()  # a second cancel after the end is harmless


def test_run_statuses_are_distinct():
    assert runner_module.status_for(0, cancelled=False) is RunStatus.SUCCEEDED
    assert runner_module.status_for(2, cancelled=False) is RunStatus.FAILED
    assert runner_module.status_for(None, cancelled=False) is RunStatus.FAILED
    assert runner_module.status_for(-9, cancelled=True) is RunStatus.CANCELLED
    assert len({RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED}) == 3


@pytest.mark.skipif(not POSIX, reason="parent links are read from /proc or ps")
def test_kill_tree_without_a_process_group():
    """What QtProcessRunner relies on: the launcher is not a group leader, its children must still die."""
    parent = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(SPAWNING_SCRIPT)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        child = int(parent.stdout.readline().split()[1])
        assert child in process_tree.descendants(parent.pid)
        process_tree.kill_tree(parent.pid)
        parent.wait(5)
        assert _wait_until(lambda: not process_tree.is_alive(child), 5)
    finally:
        if parent.poll() is None:
            parent.kill()
        parent.stdout.close()


# ----- logic with an injected runner -------------------------------------------------------------


class FakeRunner:
    """Records the call; the test decides what the 'process' prints and how it ends."""

    def __init__(self):
        self.args = None
        self.env = None
        self.cwd = None
        self.running = False
        self.cancelled = False

    def start(self, args, on_output, on_finished, env=None, cwd=None):
        self.args, self.env, self.cwd = list(args), env, cwd
        self.on_output, self.on_finished = on_output, on_finished
        self.running = True

    def finish(self, chunks, status, exit_code, message=""):
        for chunk in chunks:
            self.on_output(chunk)
        self.running = False
        self.on_finished(RunResult(status, exit_code, message))

    def cancel(self):
        self.cancelled = True

    def is_running(self):
        return self.running

    def wait(self, timeout=None):
        return not self.running


@pytest.fixture
def scan(tmp_path):
    path = tmp_path / "scan.nii.gz"
    path.write_bytes(b"not read by the fake runner")
    return path


def _write_outputs(folder: Path, summary=SUMMARY):
    (folder / "summary.json").write_text(json.dumps(summary))
    (folder / "heatmap.nii.gz").write_bytes(b"h")
    (folder / "labelmap.nii.gz").write_bytes(b"l")


def test_logic_builds_the_command_and_reports_success(tmp_path, scan):
    fake = FakeRunner()
    logic = LatentAnomalyLogic(runner=fake, python="/opt/Slicer/bin/PythonSlicer")
    out = tmp_path / "out"
    seen, outcomes = [], []
    parameters = DetectParameters(
        modelPath=tmp_path / "bundle", scorer="knn", device="cpu", skull="skull", threshold=0.5
    )
    logic.startDetectionOnFile(scan, out, parameters, lambda f, s: seen.append((f, s)), outcomes.append)

    assert fake.args == [
        "/opt/Slicer/bin/PythonSlicer",
        "-m",
        "LatentAnomalyLib.cli",
        "detect",
        str(scan.resolve()),
        "--out",
        str(out.resolve()),
        "--progress",
        "lines",
        "--device",
        "cpu",
        "--skull",
        "skull",
        "--model",
        str(tmp_path / "bundle"),
        "--scorer",
        "knn",
        "--threshold",
        "0.5",
    ]
    assert out.is_dir()
    assert fake.cwd == REPO == logic.libraryRoot()
    assert fake.env["PYTHONPATH"].split(os.pathsep)[0] == str(REPO)
    assert logic.isRunning()

    _write_outputs(out)
    fake.finish(["PROGRESS 10 re", "ad\nnote: using the CPU\nPROGRESS 100 done\n"], RunStatus.SUCCEEDED, 0)
    assert seen == [(0.1, "read"), (1.0, "done")]
    [outcome] = outcomes
    assert outcome is logic.lastOutcome
    assert outcome.succeeded and outcome.exitCode == 0 and outcome.errorMessage == ""
    assert outcome.summary == SUMMARY and outcome.notes == ["using the CPU"]
    assert outcome.heatmapPath == out.resolve() / "heatmap.nii.gz"
    assert outcome.modelPath == tmp_path / "bundle"
    assert "latent-anomaly-t1 1.2.0" in logic.summaryText(outcome.summary)


def test_logic_uses_the_default_model_when_none_is_chosen(tmp_path, scan):
    fake = FakeRunner()
    logic = LatentAnomalyLogic(runner=fake, python="py")
    logic.startDetectionOnFile(scan, tmp_path / "out", DetectParameters())
    default = LatentAnomalyLogic.defaultModelPath()
    if default is None:
        assert "--model" not in fake.args
    else:
        assert fake.args[fake.args.index("--model") + 1] == str(REPO / "models" / "latent-anomaly-t1")
    assert "--scorer" not in fake.args and "--threshold" not in fake.args


def test_logic_reports_the_cli_error_line(tmp_path, scan):
    fake = FakeRunner()
    logic = LatentAnomalyLogic(runner=fake, python="py")
    outcomes = []
    logic.startDetectionOnFile(scan, tmp_path / "out", DetectParameters(), onFinished=outcomes.append)
    fake.finish(["PROGRESS 5 read\n", "error: scan.nii.gz: cannot read"], RunStatus.FAILED, 2)
    assert outcomes[0].status is RunStatus.FAILED and outcomes[0].exitCode == 2
    assert outcomes[0].errorMessage == "scan.nii.gz: cannot read"
    assert outcomes[0].summary is None


def test_logic_reports_cancel_and_missing_results_distinctly(tmp_path, scan):
    fake = FakeRunner()
    logic = LatentAnomalyLogic(runner=fake, python="py")
    outcomes = []
    logic.startDetectionOnFile(scan, tmp_path / "a", DetectParameters(), onFinished=outcomes.append)
    logic.cancel()
    assert fake.cancelled
    fake.finish([], RunStatus.CANCELLED, -9)
    logic.startDetectionOnFile(scan, tmp_path / "b", DetectParameters(), onFinished=outcomes.append)
    fake.finish([], RunStatus.SUCCEEDED, 0)  # exit 0 but nothing written
    logic.startDetectionOnFile(scan, tmp_path / "c", DetectParameters(), onFinished=outcomes.append)
    fake.finish([], RunStatus.FAILED, None, "could not start py: not found")
    assert [o.status for o in outcomes] == [RunStatus.CANCELLED, RunStatus.FAILED, RunStatus.FAILED]
    assert outcomes[0].errorMessage == "cancelled"
    assert "without usable results" in outcomes[1].errorMessage and "summary" in outcomes[1].errorMessage
    assert outcomes[2].errorMessage == "could not start py: not found"


def test_logic_validates_before_starting(tmp_path, scan):
    fake = FakeRunner()
    logic = LatentAnomalyLogic(runner=fake, python="py")
    with pytest.raises(ValueError, match="finite"):
        logic.startDetectionOnFile(scan, tmp_path / "out", DetectParameters(threshold=float("nan")))
    with pytest.raises(ValueError, match="no such scan file"):
        logic.startDetectionOnFile(tmp_path / "missing.nii", tmp_path / "out", DetectParameters())
    assert fake.args is None and not (tmp_path / "out").exists()
    logic.startDetectionOnFile(scan, tmp_path / "out", DetectParameters())
    with pytest.raises(RuntimeError, match="already running"):
        logic.startDetectionOnFile(scan, tmp_path / "out2", DetectParameters())


def test_python_executable_falls_back_to_this_interpreter(monkeypatch):
    monkeypatch.setattr(logic_module.shutil, "which", lambda name: None)
    assert LatentAnomalyLogic.pythonSlicerExecutable() == sys.executable
    monkeypatch.setattr(
        logic_module.shutil, "which", lambda name: "/S/bin/PythonSlicer" if name == "PythonSlicer" else None
    )
    assert LatentAnomalyLogic(runner=FakeRunner()).pythonExecutable() == "/S/bin/PythonSlicer"
    assert LatentAnomalyLogic(runner=FakeRunner(), python="/x/python").pythonExecutable() == "/x/python"


def test_default_runner_outside_slicer_is_subprocess():
    assert isinstance(LatentAnomalyLogic().runner, SubprocessRunner)


def test_model_info(monkeypatch):
    calls = []

    def fake_run(args, **kwargs):
        calls.append(args)
        if "--model" in args and args[args.index("--model") + 1] == "/bad":
            return subprocess.CompletedProcess(args, 2, "", "note: x\nerror: /bad: not a model bundle\n")
        return subprocess.CompletedProcess(args, 0, json.dumps({"name": "m", "scorers": ["knn"]}), "")

    monkeypatch.setattr(logic_module.subprocess, "run", fake_run)
    logic = LatentAnomalyLogic(runner=FakeRunner(), python="py")
    assert logic.modelInfo("/good") == {"name": "m", "scorers": ["knn"]}
    assert calls[0] == ["py", "-m", "LatentAnomalyLib.cli", "info", "--model", "/good", "--json"]
    with pytest.raises(RuntimeError, match=r"^/bad: not a model bundle$"):
        logic.modelInfo("/bad")


def _tiny_scan(path: Path) -> Path:
    image = sitk.GetImageFromArray(np.random.default_rng(0).normal(100, 10, (12, 14, 10)).astype(np.float32))
    image.SetSpacing((1.5, 1.2, 2.0))
    image.SetOrigin((10.0, -20.0, 5.0))
    sitk.WriteImage(image, str(path))
    return path


@pytest.mark.slow
def test_logic_with_the_real_cli_reports_a_bad_model_cleanly(tmp_path):
    """End to end through SubprocessRunner and the real CLI: a user error is one clean message, not a traceback."""
    logic = LatentAnomalyLogic(runner=SubprocessRunner(), python=sys.executable)
    scan = _tiny_scan(tmp_path / "scan.nii.gz")
    (tmp_path / "not-a-bundle").mkdir()
    outcomes = []
    logic.startDetectionOnFile(
        scan, tmp_path / "out", DetectParameters(modelPath=tmp_path / "not-a-bundle"), onFinished=outcomes.append
    )
    assert logic.waitForFinished(300)
    [outcome] = outcomes
    assert outcome.status is RunStatus.FAILED and outcome.exitCode == 2, outcome.log
    assert outcome.errorMessage and "Traceback" not in outcome.log
    assert "not-a-bundle" in outcome.errorMessage or "manifest" in outcome.errorMessage


BUNDLE = REPO / "models" / "latent-anomaly-t1"
SAMPLE = REPO / "Testing" / "Data" / "IXI_sample_T1.nii.gz"


@pytest.mark.slow
@pytest.mark.skipif(
    not (BUNDLE / "manifest.json").is_file() or not SAMPLE.is_file(),
    reason="needs the bundled model and the sample scan",
)
def test_logic_with_the_real_cli_on_the_sample(tmp_path):
    logic = LatentAnomalyLogic(runner=SubprocessRunner(), python=sys.executable)
    seen = []
    logic.startDetectionOnFile(
        SAMPLE, tmp_path / "out", DetectParameters(device="cpu"), onProgress=lambda f, s: seen.append(f)
    )
    assert logic.waitForFinished(1800)
    outcome = logic.lastOutcome
    assert outcome.succeeded, outcome.errorMessage + "\n" + outcome.log
    assert seen and seen[-1] == 1.0
    source = sitk.ReadImage(str(SAMPLE))
    for path in (outcome.heatmapPath, outcome.labelmapPath):
        image = sitk.ReadImage(str(path))
        assert image.GetSize() == source.GetSize()
        assert np.allclose(image.GetSpacing(), source.GetSpacing(), atol=1e-4)
        assert np.allclose(image.GetOrigin(), source.GetOrigin(), atol=1e-3)
        assert np.allclose(image.GetDirection(), source.GetDirection(), atol=1e-4)
    assert set(np.unique(sitk.GetArrayFromImage(sitk.ReadImage(str(outcome.labelmapPath))))) <= {0, 1}


# ----- re-thresholding, display range, self-test helpers --------------------------------------------


def _heatmap_image() -> sitk.Image:
    array = np.zeros((20, 24, 22), dtype=np.float32)
    array[4:9, 5:10, 5:10] = 2.0  # 125 voxels
    array[12:14, 15:17, 15:17] = 1.0  # 8 voxels
    array[15, 3, 3] = 3.0  # a single hot voxel
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((2.0, 2.0, 2.0))  # 8 mm^3 = 0.008 mL per voxel
    image.SetOrigin((-20.0, 10.0, 0.0))
    return image


def test_relabel_matches_the_library_and_updates_the_summary():
    from LatentAnomalyLib.components import label_components

    image = _heatmap_image()
    labels, components = rethreshold.relabel(image, 0.5, 0.05)
    expected_labels, expected_components = label_components(sitk.GetArrayFromImage(image), 0.5, image, 0.05)
    assert np.array_equal(labels, expected_labels) and components == expected_components
    assert labels.dtype == np.uint8 and int(labels.sum()) == 133  # the single voxel (0.008 mL) is dropped
    assert [c["volume_ml"] for c in components] == pytest.approx([1.0, 0.064])

    voxel_ml = rethreshold.voxel_volume_ml(image.GetSpacing())
    assert voxel_ml == pytest.approx(0.008)
    updated = rethreshold.summary_after_rethreshold(SUMMARY, 0.5, labels, components, voxel_ml)
    assert updated["voxel_threshold"] == 0.5 and updated["voxel_threshold_source"] == rethreshold.SOURCE_SLICER
    assert updated["detected_voxel_threshold"] == SUMMARY["voxel_threshold"]
    assert updated["flagged_volume_ml"] == pytest.approx(1.064)
    assert updated["flagged_fraction_of_brain"] == pytest.approx(1.064 / 1200.0)
    assert updated["n_components"] == 2 and updated["components"] == components
    assert updated["subject_score"] == SUMMARY["subject_score"]
    assert SUMMARY["voxel_threshold"] == 0.8125 and SUMMARY["n_components"] == 4  # input untouched

    labels, components = rethreshold.relabel(image, 1.5, 0.05)
    back = rethreshold.summary_after_rethreshold(updated, SUMMARY["voxel_threshold"], labels, components, voxel_ml)
    assert back["voxel_threshold_source"] == SUMMARY["voxel_threshold_source"]
    assert back["detected_voxel_threshold"] == SUMMARY["voxel_threshold"]


def test_min_component_ml(tmp_path):
    calibration = {"scorers": {"knn": {"min_component_ml": 0.3}, "gaussian": {}}}
    (tmp_path / "calibration.json").write_text(json.dumps(calibration))
    assert rethreshold.min_component_ml(tmp_path, "knn") == 0.3
    assert rethreshold.min_component_ml(tmp_path, "gaussian") == rethreshold.DEFAULT_MIN_COMPONENT_ML
    assert rethreshold.min_component_ml(tmp_path, "unknown") == rethreshold.DEFAULT_MIN_COMPONENT_ML
    assert rethreshold.min_component_ml(tmp_path / "nowhere", "knn") == rethreshold.DEFAULT_MIN_COMPONENT_ML
    assert rethreshold.min_component_ml(None, "knn") == rethreshold.DEFAULT_MIN_COMPONENT_ML


@pytest.mark.parametrize(("threshold", "peak"), [(0.8, 2.0), (0.8, 0.5), (0.0, 0.0), (-1.0, 3.0), (5.0, 5.0)])
def test_heatmap_display_range(threshold, peak):
    lower, upper = display.heatmap_display_range(threshold, peak)
    assert lower < threshold < upper
    assert upper >= peak or peak <= threshold
    assert threshold - lower == pytest.approx((upper - lower) / 3)
    window, level = display.window_level(lower, upper)
    assert window == pytest.approx(upper - lower) and level == pytest.approx((upper + lower) / 2)


def test_find_sample_scan(tmp_path):
    nested = tmp_path / "repo" / "LatentAnomaly" / "LatentAnomalyGUI"
    nested.mkdir(parents=True)
    assert selftest.find_sample_scan(nested, env={}) is None
    sample = tmp_path / "repo" / selftest.SAMPLE_RELATIVE
    sample.parent.mkdir(parents=True)
    sample.write_bytes(b"x")
    assert selftest.find_sample_scan(nested, env={}) == sample
    assert selftest.find_sample_scan(nested / "LatentAnomaly.py", env={}) == sample  # a file's path works too
    other = tmp_path / "elsewhere.nii.gz"
    other.write_bytes(b"y")
    assert selftest.find_sample_scan(nested, env={selftest.SAMPLE_ENV: str(other)}) == other
    assert selftest.find_sample_scan(nested, env={selftest.SAMPLE_ENV: str(tmp_path / "gone")}) == sample
    assert selftest.find_sample_scan(MODULE_DIR, env={}) == (SAMPLE if SAMPLE.is_file() else None)


def test_geometry_mismatches():
    matrix = [[-1.0, 0, 0, 10.0], [0, -1.0, 0, 20.0], [0, 0, 1.0, -5.0], [0, 0, 0, 1.0]]
    expected = {"dimensions": [10, 12, 8], "spacing": [1.0, 1.0, 1.2], "origin": [10.0, 20.0, -5.0], "ijkToRas": matrix}
    close = {**expected, "origin": [10.00001, 20.0, -5.0]}
    assert selftest.geometry_mismatches(expected, close) == []
    wrong = {**expected, "dimensions": [10, 12, 9], "ijkToRas": [row[:] for row in matrix]}
    wrong["ijkToRas"][0][0] = 1.0
    problems = selftest.geometry_mismatches(expected, wrong)
    assert [p.split(":")[0] for p in problems] == ["dimensions", "ijkToRas"]
    assert selftest.geometry_mismatches(expected, {}) == [f"{k}: missing" for k in expected]


# ----- dependencies ------------------------------------------------------------------------------


def test_requirements_file_matches_pyproject_pins():
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    pins = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    wanted = sorted(p for p in pins if dependencies.requirement_name(p) not in dependencies.SKIP_PACKAGES)
    listed = dependencies.read_requirements(MODULE_DIR / "Resources" / "requirements.txt")
    assert sorted(listed) == wanted
    assert dependencies.REQUIREMENTS_FILE == MODULE_DIR / "Resources" / "requirements.txt"


def test_requirement_and_import_names():
    assert dependencies.requirement_name("scikit-learn==1.8.0") == "scikit-learn"
    assert dependencies.requirement_name("torch>=2.4") == "torch"
    assert dependencies.requirement_name("monai[nibabel]~=1.6; python_version>'3'") == "monai"
    assert dependencies.import_name("scikit-learn==1.8.0") == "sklearn"
    assert dependencies.import_name("SimpleITK") == "SimpleITK"
    assert dependencies.import_name("safetensors==0.8.0") == "safetensors"


def test_missing_requirements_in_process():
    missing = dependencies.missing_requirements(["numpy==2.4.6", "surely-not-installed-xyz==1.0", "SimpleITK"])
    assert missing == ["surely-not-installed-xyz==1.0"]


@pytest.mark.skipif(not POSIX, reason="uses a shell wrapper as 'another interpreter'")
def test_missing_requirements_in_another_interpreter(tmp_path):
    wrapper = tmp_path / "PythonSlicer"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IEXEC)
    assert dependencies.missing_requirements(["numpy", "surely-not-installed-xyz"], python=wrapper) == [
        "surely-not-installed-xyz"
    ]


def test_install_plan_routes_torch_and_simpleitk():
    need_torch, pip, problems = dependencies.install_plan(["monai==1.6.1", "torch>=2.4", "nibabel==5.4.2"])
    assert need_torch and pip == ["monai==1.6.1", "nibabel==5.4.2"] and problems == []
    need_torch, pip, problems = dependencies.install_plan(["SimpleITK"])
    assert not need_torch and pip == [] and "SimpleITK" in problems[0]
    wanted = dependencies.wanted_requirements()
    assert "torch>=2.4" in wanted and "SimpleITK" in wanted


# ----- static checks of the Slicer-only files --------------------------------------------------------


def _cmake_list(text: str, variable: str) -> list[str]:
    match = re.search(rf"set\(\s*{variable}\s+(.*?)\)", text, re.S)
    assert match, variable
    return [line.split("#")[0].strip() for line in match.group(1).splitlines() if line.split("#")[0].strip()]


def test_every_python_file_is_listed_in_module_cmake():
    text = (MODULE_DIR / "CMakeLists.txt").read_text()
    listed = {item.replace("${MODULE_NAME}", "LatentAnomaly") for item in _cmake_list(text, "MODULE_PYTHON_SCRIPTS")}
    present = {p.relative_to(MODULE_DIR).as_posix() for p in MODULE_DIR.rglob("*.py") if "__pycache__" not in p.parts}
    assert present == listed
    resources = [
        item.replace("${MODULE_NAME}", "LatentAnomaly") for item in _cmake_list(text, "MODULE_PYTHON_RESOURCES")
    ]
    assert set(resources) == {
        "Resources/Icons/LatentAnomaly.png",
        "Resources/UI/LatentAnomaly.ui",
        "Resources/requirements.txt",
    }
    for item in resources:
        assert (MODULE_DIR / item).is_file(), item
    assert "slicerMacroBuildScriptedModule(" in text and "WITH_GENERIC_TESTS" in text
    assert re.search(r"if\(BUILD_TESTING\)\s+.*slicer_add_python_unittest\(SCRIPT \$\{MODULE_NAME\}\.py\)", text, re.S)
    assert "GLOB_RECURSE" in text and "install(DIRECTORY" in text and "LatentAnomalyLib" in text


def test_top_level_cmake():
    text = (REPO / "CMakeLists.txt").read_text()
    assert "cmake_minimum_required(VERSION 3.16.3...3.19.7" in text
    assert re.search(r"^project\(LatentAnomaly\)", text, re.M)
    for variable in ("HOMEPAGE", "CATEGORY", "CONTRIBUTORS", "DESCRIPTION", "ICONURL", "SCREENSHOTURLS", "DEPENDS"):
        assert re.search(rf"set\(EXTENSION_{variable} \"[^\"]+\"\)", text), variable
    assert 'set(EXTENSION_DEPENDS "PyTorch")' in text
    assert 'set(EXTENSION_HOMEPAGE "https://github.com/latent-anomaly/SlicerLatentAnomaly")' in text
    order = [
        "find_package(Slicer REQUIRED)",
        "include(${Slicer_USE_FILE})",
        "add_subdirectory(LatentAnomaly)",
        "include(${Slicer_EXTENSION_GENERATE_CONFIG})",
        "include(${Slicer_EXTENSION_CPACK})",
    ]
    positions = [text.index(item) for item in order]
    assert positions == sorted(positions)
    assert text.rstrip().endswith("include(${Slicer_EXTENSION_CPACK})")
    assert not (REPO / "LatentAnomalyLib" / "CMakeLists.txt").exists()


def _classes_and_imports(path: Path) -> tuple[dict[str, ast.ClassDef], set[str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    classes = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}
    imported = {
        alias.asname or alias.name for node in tree.body if isinstance(node, ast.ImportFrom) for alias in node.names
    }
    return classes, imported


def test_module_file_defines_what_slicer_looks_for():
    path = MODULE_DIR / "LatentAnomaly.py"
    classes, imported = _classes_and_imports(path)
    assert {"LatentAnomaly", "LatentAnomalyTest"} <= set(classes)
    assert {"LatentAnomalyWidget", "LatentAnomalyLogic"} <= imported
    assert [base.id for base in classes["LatentAnomaly"].bases] == ["ScriptedLoadableModule"]
    assert [base.id for base in classes["LatentAnomalyTest"].bases] == ["ScriptedLoadableModuleTest"]
    assert "runTest" in {f.name for f in classes["LatentAnomalyTest"].body if isinstance(f, ast.FunctionDef)}
    assert len(path.read_text().splitlines()) <= 120
    widget_classes, _ = _classes_and_imports(GUI_DIR / "widget.py")
    assert [b.id for b in widget_classes["LatentAnomalyWidget"].bases] == [
        "ScriptedLoadableModuleWidget",
        "VTKObservationMixin",
    ]
    methods = {f.name for f in widget_classes["LatentAnomalyWidget"].body if isinstance(f, ast.FunctionDef)}
    assert {
        "setup",
        "cleanup",
        "enter",
        "exit",
        "onSceneStartClose",
        "onSceneEndClose",
        "initializeParameterNode",
    } <= methods
    assert LatentAnomalyLogic.__name__ == "LatentAnomalyLogic"


def _ui_tree() -> ET.ElementTree:
    return ET.parse(MODULE_DIR / "Resources" / "UI" / "LatentAnomaly.ui")


def test_ui_parameter_names_match_the_parameter_node_and_widget_code():
    classes, _ = _classes_and_imports(GUI_DIR / "parameters.py")
    fields = {node.target.id for node in classes["LatentAnomalyParameterNode"].body if isinstance(node, ast.AnnAssign)}
    assert {
        "inputVolume",
        "heatmapVolume",
        "labelVolume",
        "modelPath",
        "scorer",
        "device",
        "skullMode",
        "threshold",
    } <= fields
    tree = _ui_tree()
    bound = {prop.findtext("string") for prop in tree.iter("property") if prop.get("name") == "SlicerParameterName"}
    assert bound <= fields, bound - fields
    assert bound == fields  # every parameter has a widget
    names = {widget.get("name") for widget in tree.iter("widget")}
    used = set(re.findall(r"self\.ui\.(\w+)", (GUI_DIR / "widget.py").read_text()))
    assert used <= names, used - names
    assert tree.getroot().find("widget").get("name") == "LatentAnomaly"


def test_slicer_only_files_compile():
    for path in [MODULE_DIR / "LatentAnomaly.py", *GUI_DIR.glob("*.py")]:
        compile(path.read_text(), str(path), "exec")


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_icons_and_license():
    module_icon = MODULE_DIR / "Resources" / "Icons" / "LatentAnomaly.png"
    extension_icon = REPO / "Resources" / "LatentAnomaly.png"
    assert _png_size(module_icon) == (128, 128)
    assert extension_icon.read_bytes() == module_icon.read_bytes()
    license_text = (REPO / "LICENSE").read_text()
    assert "Apache License" in license_text and "Version 2.0, January 2004" in license_text
    assert "END OF TERMS AND CONDITIONS" in license_text


@pytest.mark.skipif(shutil.which("cmake") is None, reason="cmake not installed")
def test_cmake_configures_and_installs_with_a_stub_slicer(tmp_path):
    """Runs both CMakeLists.txt against stub Slicer macros to check syntax and what gets installed where."""
    stub = tmp_path / "stub"
    stub.mkdir()
    (stub / "SlicerConfig.cmake").write_text(
        textwrap.dedent("""
        set(Slicer_USE_FILE ${CMAKE_CURRENT_LIST_DIR}/UseSlicer.cmake)
        set(Slicer_EXTENSION_GENERATE_CONFIG ${CMAKE_CURRENT_LIST_DIR}/empty.cmake)
        set(Slicer_EXTENSION_CPACK ${CMAKE_CURRENT_LIST_DIR}/empty.cmake)
        set(Slicer_QTSCRIPTEDMODULES_LIB_DIR lib/Slicer/qt-scripted-modules)
        set(Slicer_INSTALL_QTSCRIPTEDMODULES_LIB_DIR lib/Slicer/qt-scripted-modules)
    """)
    )
    (stub / "UseSlicer.cmake").write_text(
        textwrap.dedent("""
        set(BUILD_TESTING ON)
        enable_testing()
        macro(slicerMacroBuildScriptedModule)
          cmake_parse_arguments(MY "WITH_GENERIC_TESTS;WITH_SUBDIR" "NAME" "SCRIPTS;RESOURCES" ${ARGN})
          foreach(f ${MY_SCRIPTS} ${MY_RESOURCES})
            get_filename_component(d ${f} DIRECTORY)
            install(FILES ${f} DESTINATION ${Slicer_INSTALL_QTSCRIPTEDMODULES_LIB_DIR}/${d})
          endforeach()
        endmacro()
        macro(slicer_add_python_unittest)
          cmake_parse_arguments(MY "" "SCRIPT" "" ${ARGN})
          get_filename_component(n ${MY_SCRIPT} NAME_WE)
          add_test(NAME py_${n} COMMAND ${CMAKE_COMMAND} -E echo)
        endmacro()
    """)
    )
    (stub / "empty.cmake").write_text("")
    build, prefix = tmp_path / "build", tmp_path / "install"
    configure = subprocess.run(
        ["cmake", "-S", str(REPO), "-B", str(build), f"-DSlicer_DIR={stub}"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert configure.returncode == 0, configure.stdout + configure.stderr
    install = subprocess.run(
        ["cmake", "--install", str(build), "--prefix", str(prefix)], capture_output=True, text=True, check=False
    )
    assert install.returncode == 0, install.stdout + install.stderr
    modules = prefix / "lib" / "Slicer" / "qt-scripted-modules"
    assert (modules / "LatentAnomaly.py").is_file() and (modules / "LatentAnomalyGUI" / "logic.py").is_file()
    library = sorted(
        p.relative_to(REPO).as_posix()
        for p in (REPO / "LatentAnomalyLib").rglob("*.py")
        if "__pycache__" not in p.parts
    )
    installed = sorted(p.relative_to(modules).as_posix() for p in (modules / "LatentAnomalyLib").rglob("*.py"))
    assert installed == library
    assert (build / "lib" / "Slicer" / "qt-scripted-modules" / "LatentAnomalyLib" / "cli.py").is_file()
    if (BUNDLE / "manifest.json").is_file():
        assert (modules / "models" / "latent-anomaly-t1" / "manifest.json").is_file()


# ----- flagged regions table ---------------------------------------------------------------------


def test_region_rows_are_sorted_numbered_and_formatted():
    rows = regions.region_rows(SUMMARY)
    assert [row.number for row in rows] == [1, 2, 3, 4]
    assert [row.volume_ml for row in rows] == [10.0, 3.0, 1.0, 0.25]
    assert rows[0].ras == (12.34, -40.06, 22.0) and rows[0].peak_score == 2.75
    assert rows[0].cells() == ("1", "10.00", "2.75", "12.3, -40.1, 22.0")
    assert len(regions.COLUMNS) == len(rows[0].cells())
    assert regions.region_rows(None) == [] and regions.region_rows({"components": []}) == []


def test_region_rows_tolerate_incomplete_components():
    summary = {"components": [{"volume_ml": "x", "centroid_ras_mm": [1, "a", 3]}, {"volume_ml": 2.0}, "junk"]}
    rows = regions.region_rows(summary)
    assert [(r.number, r.volume_ml, r.peak_score, r.ras) for r in rows] == [(1, 2.0, None, None), (2, 0.0, None, None)]
    assert rows[0].cells() == ("1", "2.00", "?", "?")


def _slicer_ijk_to_ras(image: sitk.Image) -> list[list[float]]:
    """What Slicer's GetIJKToRASMatrix holds for a volume read from ``image`` (LPS physical space flipped to RAS)."""
    direction = np.asarray(image.GetDirection()).reshape(3, 3) * np.asarray(image.GetSpacing())
    lps_to_ras = np.diag([-1.0, -1.0, 1.0])
    matrix = np.eye(4)
    matrix[:3, :3] = lps_to_ras @ direction
    matrix[:3, 3] = lps_to_ras @ np.asarray(image.GetOrigin())
    return matrix.tolist()


def test_region_centroids_agree_with_slicer_ras_of_the_voxel_centroid():
    """The library's ``centroid_ras_mm`` is where Slicer puts the voxel centroid, even on an oblique LPS grid."""
    from LatentAnomalyLib.components import label_components

    image = _heatmap_image()
    angle = math.radians(20)
    image.SetDirection((math.cos(angle), -math.sin(angle), 0.0, math.sin(angle), math.cos(angle), 0.0, 0.0, 0.0, -1.0))
    _, components = label_components(sitk.GetArrayFromImage(image), 0.5, image, 0.05)
    matrix = _slicer_ijk_to_ras(image)
    for component in components:
        from_voxels = regions.centroid_ras({"centroid_voxel_ijk": component["centroid_voxel_ijk"]}, matrix)
        assert from_voxels == pytest.approx(component["centroid_ras_mm"], abs=0.02)
        assert regions.centroid_ras(component, matrix) == tuple(component["centroid_ras_mm"])
    assert regions.centroid_ras({"centroid_voxel_ijk": [1, 2, 3]}) is None  # no matrix, no RAS centroid
    rows = regions.region_rows({"components": components}, matrix)
    assert [row.ras for row in rows] == [tuple(c["centroid_ras_mm"]) for c in components]


# ----- ground-truth comparison -------------------------------------------------------------------


def _lesion_case():
    heatmap = np.zeros((6, 8, 8), dtype=np.float32)
    heatmap[1:5, 1:7, 1:7] = 0.1  # brain: 144 voxels, non-zero scores
    heatmap[2:4, 2:4, 2:4] = 2.0  # lesion scores high (8 voxels)
    truth = np.zeros(heatmap.shape, dtype=np.uint8)
    truth[2:4, 2:4, 2:4] = 1
    return heatmap, truth


def test_ground_truth_metrics_perfect_and_partial():
    heatmap, truth = _lesion_case()
    labels = (heatmap > 1.0).astype(np.uint8)
    metrics = ground_truth.ground_truth_metrics(heatmap, labels, truth)
    assert metrics == {
        "dice": 1.0,
        "auroc": 1.0,
        "auprc": 1.0,
        "n_brain_voxels": 144,
        "n_truth_voxels": 8,
        "truth_outside_brain": 0,
    }
    half = labels.copy()
    half[2] = 0  # 4 of the 8 lesion voxels flagged
    assert ground_truth.ground_truth_metrics(heatmap, half, truth)["dice"] == pytest.approx(2 * 4 / (4 + 8))
    truth_with_outside = truth.copy()
    truth_with_outside[0, 0, 0] = 7  # any non-zero value is lesion; this voxel is outside the brain
    metrics = ground_truth.ground_truth_metrics(heatmap, labels, truth_with_outside)
    assert metrics["truth_outside_brain"] == 1 and metrics["n_truth_voxels"] == 8 and metrics["auroc"] == 1.0


def test_ground_truth_metrics_agree_with_sklearn_inside_the_brain():
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(3)
    heatmap = np.zeros((10, 12, 12), dtype=np.float32)
    brain = np.zeros(heatmap.shape, dtype=bool)
    brain[1:9, 2:10, 2:10] = True
    truth = np.zeros(heatmap.shape, dtype=np.uint8)
    truth[3:6, 4:7, 4:8] = 1
    heatmap[brain] = rng.normal(0.0, 1.0, int(brain.sum())) + 1.5 * truth[brain]
    labels = (heatmap > 1.0).astype(np.uint8)
    metrics = ground_truth.ground_truth_metrics(heatmap, labels, truth, brain=brain)
    assert metrics["auroc"] == pytest.approx(sklearn_metrics.roc_auc_score(truth[brain], heatmap[brain]))
    assert metrics["auprc"] == pytest.approx(sklearn_metrics.average_precision_score(truth[brain], heatmap[brain]))
    expected_dice = 2 * np.sum(labels & truth) / (labels.sum() + truth.sum())
    assert metrics["dice"] == pytest.approx(expected_dice)
    assert metrics["n_brain_voxels"] == int(brain.sum())


def test_ground_truth_metrics_edge_cases():
    heatmap, truth = _lesion_case()
    empty = np.zeros_like(truth)
    metrics = ground_truth.ground_truth_metrics(heatmap, empty, empty)
    assert metrics["dice"] == 1.0 and metrics["auroc"] is None and metrics["auprc"] is None
    assert "undefined" in ground_truth.format_ground_truth_metrics(metrics)
    with pytest.raises(ValueError, match="ground truth grid"):
        ground_truth.ground_truth_metrics(heatmap, empty, truth[:-1])
    with pytest.raises(ValueError, match="label map grid"):
        ground_truth.ground_truth_metrics(heatmap, empty[:, :-1], truth)
    assert ground_truth.brain_mask_from_heatmap(np.zeros((2, 2, 2))).all()  # no brain found: every voxel


def test_format_ground_truth_metrics():
    text = ground_truth.format_ground_truth_metrics(
        {"dice": 0.5, "auroc": 0.91234, "auprc": None, "n_truth_voxels": 3, "truth_outside_brain": 2}
    )
    assert text.splitlines() == [
        "Dice 0.500   AUROC 0.912   AUPRC n/a",
        "(2 ground-truth voxels lie outside the brain and are not ranked)",
    ]


def test_resample_like_puts_a_ground_truth_on_the_heatmap_grid():
    reference = _heatmap_image()  # 2 mm voxels
    assert ground_truth.resample_like(reference, reference) is reference
    fine = np.zeros((40, 48, 44), dtype=np.uint8)  # the same field of view at 1 mm
    fine[8:18, 10:20, 10:20] = 1  # reference voxel i sits on fine voxel 2i: this covers [4:9, 5:10, 5:10]
    image = sitk.GetImageFromArray(fine)
    image.SetSpacing((1.0, 1.0, 1.0))
    image.SetOrigin(reference.GetOrigin())
    resampled = ground_truth.resample_like(image, reference)
    assert resampled.GetSize() == reference.GetSize() and resampled.GetPixelID() == image.GetPixelID()
    array = sitk.GetArrayFromImage(resampled)
    expected = np.zeros(array.shape, dtype=np.uint8)
    expected[4:9, 5:10, 5:10] = 1
    assert np.array_equal(array, expected)


# ----- extension index entry and documentation ---------------------------------------------------

# Slicer/Slicer Schemas/slicer-extension-catalog-entry-schema-v1.0.1.json (draft-07), the parts it constrains.
CATALOG_SCHEMA_ID = (
    "https://raw.githubusercontent.com/Slicer/Slicer/main/Schemas/slicer-extension-catalog-entry-schema-v1.0.1.json"
)
CATALOG_REQUIRED = ("$schema", "category", "scm_url")
CATALOG_TYPES = {
    "$schema": str,
    "category": str,
    "scm_url": str,
    "scm_revision": str,
    "scm_type": str,
    "build_dependencies": list,
    "build_subdirectory": str,
    "enabled": bool,
    "tier": int,
}


def _cmake_set(text: str, variable: str) -> str:
    match = re.search(rf'set\({variable} "([^"]*)"\)', text)
    assert match, variable
    return match.group(1)


def test_extension_index_entry_follows_the_catalog_schema_and_the_cmake_metadata():
    path = REPO / "LatentAnomaly.json"
    entry = json.loads(path.read_text())
    assert entry["$schema"].split("#")[0] == CATALOG_SCHEMA_ID
    assert all(key in entry for key in CATALOG_REQUIRED)
    assert set(entry) <= set(CATALOG_TYPES), set(entry) - set(CATALOG_TYPES)  # additionalProperties: false
    for key, value in entry.items():
        assert isinstance(value, CATALOG_TYPES[key]) and not (CATALOG_TYPES[key] is int and isinstance(value, bool))
    assert entry.get("tier", 5) in (1, 3, 5) and entry.get("scm_type", "git") in ("git", "local")
    assert all(isinstance(item, str) for item in entry.get("build_dependencies", []))

    cmake = (REPO / "CMakeLists.txt").read_text()
    assert path.stem == re.search(r"^project\((\w+)\)", cmake, re.M).group(1)  # the index checks this
    assert entry["category"] == _cmake_set(cmake, "EXTENSION_CATEGORY")
    assert entry["build_dependencies"] == _cmake_set(cmake, "EXTENSION_DEPENDS").split()
    assert entry["scm_url"] == _cmake_set(cmake, "EXTENSION_HOMEPAGE")
    assert entry["scm_url"].startswith("https://") and "slicer" in entry["scm_url"].rsplit("/", 1)[-1].lower()
    assert entry["build_subdirectory"] == "."


def test_ui_review_controls():
    tree = _ui_tree()
    widgets = {widget.get("name"): widget for widget in tree.iter("widget")}
    opacity = widgets["opacitySliderWidget"]
    values = {prop.get("name"): prop.findtext("double") for prop in opacity.iter("property")}
    assert (float(values["minimum"]), float(values["maximum"]), float(values["value"])) == (0.0, 1.0, 0.5)
    assert "heatmapOpacity: Annotated[float, WithinRange(0.0, 1.0)] = 0.5" in (GUI_DIR / "parameters.py").read_text()
    table = widgets["regionsTableWidget"]
    assert table.get("class") == "QTableWidget"
    columns = [prop.findtext("number") for prop in table.iter("property") if prop.get("name") == "columnCount"]
    assert columns == [str(len(regions.COLUMNS))]
    selector = widgets["groundTruthSelector"]
    types = [
        s.text for prop in selector.iter("property") if prop.get("name") == "nodeTypes" for s in prop.iter("string")
    ]
    assert types == ["vtkMRMLLabelMapVolumeNode", "vtkMRMLSegmentationNode"]
    scene_receivers = {
        c.findtext("receiver") for c in tree.iter("connection") if "mrmlSceneChanged" in c.findtext("signal")
    }
    node_selectors = {name for name, w in widgets.items() if w.get("class") == "qMRMLNodeComboBox"}
    assert node_selectors <= scene_receivers, node_selectors - scene_receivers


def test_documentation_exists_and_is_honest_about_what_ran():
    text = (REPO / "docs" / "slicer-module.md").read_text()
    assert "## What was and was not exercised" in text
    assert "python -m pytest -q tests/test_slicer_module.py" in text
    for control in ("opacity", "Flagged regions", "Ground truth", "Cancel", "DICOM SEG", "Reload and Test"):
        assert control in text, control


def test_library_is_found_next_to_the_module_or_one_level_up(tmp_path):
    installed = tmp_path / "qt-scripted-modules"
    (installed / "LatentAnomalyLib").mkdir(parents=True)
    (installed / "LatentAnomalyLib" / "__init__.py").write_text("")
    path = ["/elsewhere"]
    assert library_path.ensure_library_importable(installed, path) == installed
    assert path == [str(installed), "/elsewhere"]
    assert library_path.ensure_library_importable(installed, path) is None and len(path) == 2  # not added twice
    source_path: list[str] = []
    assert library_path.ensure_library_importable(MODULE_DIR, source_path) == REPO  # the repository checkout
    assert source_path == [str(REPO)]
    assert library_path.ensure_library_importable(tmp_path / "empty", []) is None
    assert library_path.ensure_library_importable(MODULE_DIR) is None  # already importable here (pip -e)
