"""A detection killed (kill -9) or interrupted (Ctrl-C, SIGTERM) leaves nothing a user must clean by hand.

Real processes, really killed: ``kill -9`` cannot be caught, so what it leaves beside ``--out`` (the lock file and
the staging folder) must be removed by the next run, which says so; Ctrl-C and SIGTERM clean up at once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from LatentAnomalyLib.cli.main import main
from tests.io.bad_files_hostile import IXI


def start_cli(*args: str) -> subprocess.Popen:
    """``latent-anomaly ARGS`` in its own process group, with Ctrl-C's default action (a shell's background jobs
    inherit SIGINT ignored)."""
    return subprocess.Popen(
        [sys.executable, "-m", "LatentAnomalyLib.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def wait_for(condition, process: subprocess.Popen, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            pytest.fail(f"the run ended before the moment to interrupt it: {process.communicate()}")
        if time.monotonic() > deadline:
            os.killpg(process.pid, signal.SIGKILL)
            pytest.fail("the run never reached the moment to interrupt it")
        time.sleep(0.05)


def _staging(results: Path) -> list[Path]:
    return sorted(results.glob(".out.detect-*"))


def test_kill_9_leftovers_are_removed_by_the_next_run_which_says_so(tmp_path, capfd):
    results = tmp_path / "results"
    process = start_cli("detect", str(IXI), "--out", str(results / "out"), "--device", "cpu", "--progress", "none")
    wait_for(lambda: bool(_staging(results)), process)
    time.sleep(1.0)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    left = sorted(p.name for p in results.iterdir())
    assert ".out.lock" in left and any(n.startswith(".out.detect-") for n in left), left
    code = main(["detect", str(IXI), "--out", str(results / "out"), "--device", "cpu", "--progress", "none"])
    err = capfd.readouterr().err
    assert code == 0, err
    assert "note: removed .out.lock left by an interrupted detection" in err
    assert "note: removed .out.detect-" in err and "unfinished results" in err
    assert sorted(p.name for p in results.iterdir()) == ["out"]
    assert sorted(p.name for p in (results / "out").iterdir()) == ["heatmap.nii.gz", "labelmap.nii.gz", "summary.json"]


@pytest.mark.parametrize("signal_number", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_sigterm_leave_nothing(tmp_path, signal_number):
    results = tmp_path / "results"
    process = start_cli("detect", str(IXI), "--out", str(results / "out"), "--device", "cpu", "--progress", "none")
    wait_for(lambda: bool(_staging(results)), process)
    time.sleep(1.0)
    os.killpg(process.pid, signal_number)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert err.strip().splitlines() == ["error: interrupted"], err
    assert not results.exists(), list(results.iterdir())  # not even the parent folder the run created


def test_an_interrupt_caught_inside_exec_still_exits_130(tmp_path):
    """CPython marks a KeyboardInterrupt that passed through ``exec`` of a string (as in dataclasses, which torch's
    imports run) as unhandled even once caught, and under ``python -m`` (how the Slicer module runs the command)
    then dies by SIGINT at exit: seen as status -2 in CI."""
    (tmp_path / "interrupted_in_exec.py").write_text(
        "import sys\n"
        "import LatentAnomalyLib.cli.main as cli\n"
        "cli.command = lambda name: (lambda args: exec('raise KeyboardInterrupt'))\n"
        "sys.exit(cli.main(['info']))\n"
    )
    path = os.pathsep.join([str(tmp_path), str(Path(__file__).resolve().parents[2])])
    result = subprocess.run(
        [sys.executable, "-m", "interrupted_in_exec"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": path},
    )
    assert result.returncode == 130, result.stderr
    assert result.stderr.strip().splitlines() == ["error: interrupted"]
