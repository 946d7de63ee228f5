"""A batch run killed (kill -9) or interrupted (Ctrl-C) leaves nothing a user must clean by hand, and its
``scores.csv`` shows the cases finished so far while it runs. Real processes, really killed."""

from __future__ import annotations

import csv
import os
import shutil
import signal
import time
from pathlib import Path

import psutil
import SimpleITK as sitk

from LatentAnomalyLib.cli.main import main
from tests.io.bad_files_hostile import IXI
from tests.io.test_interruptions import start_cli, wait_for


def _cohort(tmp_path, n: int = 2):
    folder = tmp_path / "scans"
    folder.mkdir()
    for name in "abcdefgh"[:n]:
        shutil.copyfile(IXI, folder / f"{name}.nii.gz")
    return folder


def _fine_cohort(tmp_path, n: int) -> Path:
    """``n`` copies of the IXI sample resampled to 0.8 mm (300 x 300 x 225): a case takes about 11 s on 2 cores
    against 4 s at 2 mm, so a worker interrupted a few seconds after it started is surely inside its first case."""
    folder = tmp_path / "scans"
    folder.mkdir()
    image = sitk.ReadImage(str(IXI), sitk.sitkFloat32)
    size = [int(s * 2.5) for s in image.GetSize()]
    fine = sitk.Resample(
        image, size, sitk.Transform(), sitk.sitkLinear, image.GetOrigin(), [0.8] * 3, image.GetDirection(), 0.0
    )
    for name in "abcdefgh"[:n]:
        sitk.WriteImage(fine, str(folder / f"{name}.nii.gz"))
    return folder


def _rows(out) -> list[dict[str, str]]:
    return list(csv.DictReader((out / "scores.csv").read_text().splitlines()))


def test_scores_so_far_then_kill_9_then_the_next_run_cleans_up(tmp_path, capfd):
    scans, out = _cohort(tmp_path), tmp_path / "batch"
    process = start_cli("batch", str(scans), "--out", str(out), "--device", "cpu", "--progress", "none", "--export", "all")
    wait_for(lambda: (out / "scores.csv").exists(), process, timeout=180)
    partial = _rows(out)  # written atomically after the first case: complete rows only
    assert [(r["case_id"], r["status"]) for r in partial] == [("a", "done")]
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    assert (out / ".batch.lock").exists()
    code = main(["batch", str(scans), "--out", str(out), "--device", "cpu", "--progress", "none", "--export", "all"])
    captured = capfd.readouterr()
    assert code == 0, captured.err
    assert "note: removed .batch.lock left by an interrupted batch run" in captured.err
    assert "1 done, 1 already done" in captured.out  # case a is not redone
    assert sorted(r["case_id"] for r in _rows(out)) == ["a", "b"]
    assert sorted(p.name for p in out.iterdir()) == [".records", "a", "b", "scores.csv", "scores.json"]


def test_ctrl_c_with_workers_stops_at_once_and_leaves_nothing(tmp_path):
    scans, out = _fine_cohort(tmp_path, 3), tmp_path / "batch"
    process = start_cli(
        "batch", str(scans), "--out", str(out), "--device", "cpu", "--progress", "none", "--export", "all", "--workers", "2"
    )
    workers = lambda: [c for c in psutil.Process(process.pid).children() if "spawn_main" in " ".join(c.cmdline())]  # noqa: E731
    wait_for(lambda: len(workers()) == 2, process)
    time.sleep(6.0)  # the workers have loaded the model (about 3.5 s) and are inside their first case (about 11 s)
    started = time.monotonic()
    os.killpg(process.pid, signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert err.strip().splitlines() == ["error: interrupted"], err
    assert time.monotonic() - started < 15.0, "the workers must not finish their cases first"
    left = sorted(p.name for p in out.iterdir()) if out.exists() else []
    assert ".batch.lock" not in left and ".partial" not in left, left
    assert not [n for n in left if n in ("a", "b", "c")], left
