"""`latent-anomaly pacs` interrupted: the PACS stopped mid-run, the run killed with SIGKILL; nothing lost or doubled."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import SimpleITK as sitk

from LatentAnomalyLib.cli.main import main

from .orthanc import PASSWORD, USER
from .series import write_series

pytest.importorskip("highdicom")
pytestmark = pytest.mark.slow


def start_pacs(url: str, out: Path) -> tuple[subprocess.Popen, list[str]]:
    """``latent-anomaly pacs --once`` as a child process; its stderr lines are collected as they come."""
    env = dict(os.environ, LATENT_ANOMALY_PACS_USER=USER, LATENT_ANOMALY_PACS_PASSWORD=PASSWORD)
    command = [sys.executable, "-m", "LatentAnomalyLib.cli.main", "pacs", url, "--out", str(out), "--once"]
    command += ["--device", "cpu", "--alpha", "0.9", "--retry-for", "120"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []

    def collect() -> None:
        for line in process.stderr:
            lines.append(line.rstrip("\n"))

    threading.Thread(target=collect, daemon=True).start()
    return process, lines


def wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def detecting(out: Path) -> bool:
    """Whether the run has begun the detection of a series (its staging folder exists)."""
    return any((out / "results").glob(".*.detect-*")) if (out / "results").is_dir() else False


def test_orthanc_stopped_during_the_detection_loses_nothing(orthanc, ixi_sample, tmp_path):
    uids = write_series(sitk.ReadImage(str(ixi_sample)), tmp_path / "t1")
    orthanc.upload(tmp_path / "t1")
    out = tmp_path / "state"
    process, lines = start_pacs(orthanc.url, out)
    try:
        wait_for(lambda: detecting(out) or process.poll() is not None, "the detection to start")
        orthanc.stop()  # the SEG and SR are stored after the detection: the store meets a PACS that is down
        wait_for(lambda: any("PACS unreachable" in line for line in lines), "a retry")
        orthanc.start()
        assert process.wait(timeout=180) == 0, "\n".join(lines)
    finally:
        process.kill()
    assert len(orthanc.series_of("SEG")) == len(orthanc.series_of("SR")) == 1
    record = json.loads((out / "state" / f"{uids['series']}.json").read_text())
    assert record["status"] == "done" and len(record["stored"]) == 2
    assert any("retrying in 1 s" in line for line in lines)
    assert not any(line.startswith("error") or "Traceback" in line for line in lines)


def test_killed_mid_run_then_rerun_with_two_workers_stores_each_object_once_and_leaves_nothing(
    orthanc, pacs_login, ixi_sample, tmp_path
):
    image = sitk.ReadImage(str(ixi_sample))
    first = write_series(image, tmp_path / "t1")
    second = write_series(image, tmp_path / "t1_other_study", description="MPRAGE")
    orthanc.upload(tmp_path / "t1")
    orthanc.upload(tmp_path / "t1_other_study")
    uploaded = orthanc.count_instances()
    out = tmp_path / "state"
    process, _ = start_pacs(orthanc.url, out)
    try:
        wait_for(lambda: detecting(out) or process.poll() is not None, "the detection to start")
    finally:
        process.kill()  # SIGKILL: no clean-up code runs
        process.wait()
    argv = ["pacs", orthanc.url, "--out", str(out), "--once", "--device", "cpu", "--alpha", "0.9", "--workers", "2"]
    assert main(argv) == 0
    assert len(orthanc.series_of("SEG")) == len(orthanc.series_of("SR")) == 2
    assert orthanc.count_instances() == uploaded + 4
    left = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    names = ("heatmap.nii.gz", "labelmap.nii.gz", "labelmap.seg.dcm", "measurements.sr.dcm", "summary.json")
    expected = []
    for uids in (first, second):
        expected += [f"state/{uids['series']}.json", *(f"results/{uids['series']}/{name}" for name in names)]
        record = json.loads((out / "state" / f"{uids['series']}.json").read_text())
        assert record["status"] == "done" and len(record["stored"]) + len(record["already_in_pacs"]) == 2
    assert left == sorted(expected), left
