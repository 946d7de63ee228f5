"""Slicer module without Slicer: the logic driven through an injected runner, and through the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from tests.slicer_gui import (
    BUNDLE,
    REPO,
    SAMPLE,
    SUMMARY,
    DetectParameters,
    LatentAnomalyLogic,
    RunResult,
    RunStatus,
    SubprocessRunner,
    logic_module,
)

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


def test_detect_parameters_from_the_panel_in_one_place(tmp_path):
    """The panel's parameter node becomes DetectParameters; empty texts and an unticked override mean defaults."""
    from types import SimpleNamespace

    from tests.slicer_gui import detection

    panel = SimpleNamespace(
        modelPath=Path("."), scorer="  ", device="cpu", skullMode="stripped", overrideThreshold=False, threshold=0.7
    )
    assert detection.DetectParameters.fromParameterNode(panel) == DetectParameters(None, None, "cpu", "stripped", None)
    panel.modelPath, panel.scorer, panel.overrideThreshold = tmp_path, " knn ", True
    chosen = detection.DetectParameters.fromParameterNode(panel)
    assert chosen == DetectParameters(tmp_path, "knn", "cpu", "stripped", 0.7)
    assert DetectParameters is detection.DetectParameters and logic_module.DetectionOutcome is detection.DetectionOutcome
    args = chosen.command("py", "/in.nrrd", "/out", tmp_path)
    assert args[args.index("--threshold") + 1] == "0.7" and args[args.index("--model") + 1] == str(tmp_path)
    with pytest.raises(ValueError, match="device must be one of"):
        DetectParameters(device="tpu").command("py", "/in.nrrd", "/out", None)
    panel.alpha, panel.patientAge = 0.1, 67.0  # the panel's alpha and age (-1: unknown) reach the command line
    aged = detection.DetectParameters.fromParameterNode(panel)
    assert (aged.alpha, aged.age) == (0.1, 67.0)
    args = aged.command("py", "/in.nrrd", "/out", None)
    assert args[args.index("--alpha") + 1] == "0.1" and args[args.index("--age") + 1] == "67.0"
    panel.patientAge = -1.0
    assert detection.DetectParameters.fromParameterNode(panel).age is None
