"""`batch --workers N`: worker processes die with the batch process, even when it is killed with SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="kill -9 semantics tested on Linux")
def test_workers_exit_when_the_main_process_is_killed(tmp_path, ixi_sample):
    scans = tmp_path / "scans"
    scans.mkdir()
    for k in range(4):
        (scans / f"case{k}.nii.gz").write_bytes(ixi_sample.read_bytes())
    out = tmp_path / "out"
    command = [sys.executable, "-m", "LatentAnomalyLib.cli", "batch", str(scans), "--out", str(out)]
    main = subprocess.Popen(
        [*command, "--workers", "2", "--device", "cpu", "--progress", "none"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    parent = psutil.Process(main.pid)
    deadline = time.monotonic() + 120
    workers: list[psutil.Process] = []
    while time.monotonic() < deadline and len(workers) < 2:
        workers = [p for p in parent.children(recursive=True) if "resource_tracker" not in " ".join(p.cmdline())]
        time.sleep(0.5)
    assert len(workers) >= 2, "the worker processes did not start"
    time.sleep(4)  # past the initializer: the workers are loading the model or detecting
    family = parent.children(recursive=True)
    os.kill(main.pid, signal.SIGKILL)
    main.wait(timeout=30)
    gone, alive = psutil.wait_procs(family, timeout=30)
    assert not alive, f"still running after the main process was killed: {[p.pid for p in alive]}"
    assert len(gone) == len(family)
