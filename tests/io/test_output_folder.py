"""One detection's output folder: locked, staged out of sight, published whole, never inside a DICOM input."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from LatentAnomalyLib.cli.main import main
from LatentAnomalyLib.errors import InputError
from LatentAnomalyLib.outputs.detection import output_folder
from tests.io.bad_files import write_dicom_series

CPU = ["--device", "cpu", "--progress", "none"]


def _visible(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))


def _hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_second_run_into_a_locked_folder_is_refused(tmp_path, ixi_sample, capfd):
    out = tmp_path / "out"
    with output_folder(out) as staging:
        (staging / "heatmap.nii.gz").write_bytes(b"first run")
        code = main(["detect", str(ixi_sample), "--out", str(out), "--overwrite", *CPU])
        err = capfd.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and "another detection is writing" in err[0], err
    assert (out / "heatmap.nii.gz").read_bytes() == b"first run"  # the first run published whole
    assert _hidden(tmp_path) == []  # no lock file, no staging folder left


def test_published_as_a_whole_and_nothing_left_on_failure(tmp_path):
    out = tmp_path / "a" / "b" / "out"
    with pytest.raises(RuntimeError), output_folder(out) as staging:
        (staging / "heatmap.nii.gz").write_bytes(b"half")
        assert not out.exists()  # nothing visible while the detection runs
        raise RuntimeError("killed half-way")
    assert not (tmp_path / "a").exists()  # created parents removed again
    with output_folder(out) as staging:
        (staging / "summary.json").write_text("{}")
    assert _visible(out) == ["summary.json"] and _hidden(out.parent) == []


def test_overwrite_swaps_folders_and_keeps_other_files(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "heatmap.nii.gz").write_bytes(b"old")
    (out / "summary.json").write_text("old")
    with pytest.raises(InputError, match="already holds results"), output_folder(out):
        pass
    with output_folder(out, overwrite=True) as staging:
        (staging / "heatmap.nii.gz").write_bytes(b"new")
        (staging / "summary.json").write_text("new")
    assert (out / "heatmap.nii.gz").read_bytes() == b"new" and _hidden(tmp_path) == []
    (out / "notes.txt").write_text("the user's")
    with output_folder(out, overwrite=True) as staging:
        (staging / "summary.json").write_text("newer")
    assert (out / "notes.txt").read_text() == "the user's" and (out / "summary.json").read_text() == "newer"


@pytest.mark.parametrize("command", ["detect", "batch"])
@pytest.mark.parametrize("where", ["equal", "inside"])
def test_out_inside_a_dicom_input_folder_is_refused(tmp_path, where, command, capfd):
    series = tmp_path / "series"
    series.mkdir()
    write_dicom_series(series, "1.2.826.0.1.3680043.2.1125.9.1", "T1", 0, slices=10)
    before = sorted(p.name for p in series.iterdir())
    out = series if where == "equal" else series / "results"
    code = main([command, str(series), "--out", str(out), *CPU])
    err = capfd.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "inside the input folder" in err[0], err
    assert sorted(p.name for p in series.iterdir()) == before


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="kill -9 semantics tested on Linux")
def test_rerun_after_a_kill_works_and_cleans_up(tmp_path, ixi_sample):
    out = tmp_path / "out"
    command = [sys.executable, "-m", "LatentAnomalyLib.cli", "detect", str(ixi_sample), "--out", str(out), *CPU]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    run = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not list(tmp_path.glob(".out.detect-*")):
        time.sleep(0.05)
    assert list(tmp_path.glob(".out.detect-*")), "the run never started staging"
    os.kill(run.pid, signal.SIGKILL)
    run.wait(timeout=30)
    assert not out.exists()  # nothing visible as a result
    rerun = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert _visible(out) == ["heatmap.nii.gz", "labelmap.nii.gz", "summary.json"]
    assert _hidden(tmp_path) == []  # the killed run's staging folder and lock are gone


def test_second_batch_into_a_locked_folder_is_refused(tmp_path, ixi_sample, capfd):
    """Two batch runs into one --out would race on records and exports: the second is refused in one line."""
    from LatentAnomalyLib.io.publish import folder_lock

    out = tmp_path / "cohort"
    out.mkdir()
    with folder_lock(out, out / ".batch.lock", holder="batch run"):
        code = main(["batch", str(ixi_sample), "--out", str(out), *CPU])
        err = capfd.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "another batch run is writing" in err[0], err
    assert _visible(out) == []  # nothing ran: no record, no export, no table
