"""The worker side of `batch --scheduler` (cohort/dask_scan.py) and the checks before a cluster is reached.

No cluster here: `run_scan` is plain code a worker calls. The scans are missing files (they fail fast, after
the model is loaded), so these run in seconds; tests/cohort/test_dask_backend.py runs real clusters.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from LatentAnomalyLib.cli.main import main
from LatentAnomalyLib.cohort import dask_scan, workers
from LatentAnomalyLib.cohort.inputs import batch_case

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def counted_loads(monkeypatch) -> list[tuple]:
    """Every model load a worker does, still loading the real model."""
    loads: list[tuple] = []
    real = workers.init_worker

    def init_worker(*args):
        loads.append(args)
        real(*args)

    monkeypatch.setattr(workers, "init_worker", init_worker)
    monkeypatch.setattr(dask_scan, "_LOADED", None)
    return loads


def test_model_loaded_once_per_worker_and_attempts_cleared(tmp_path, counted_loads):
    options = workers.CaseOptions(out=str(tmp_path), device="cpu")
    rows = [dask_scan.run_scan(batch_case(c, str(tmp_path / f"{c}.nii.gz")), options, None, 1, "run1") for c in "ab"]
    assert counted_loads == [(None, 1)]  # two scans, one load
    assert [r["status"] for r in rows] == ["failed", "failed"] and "no such file" in rows[0]["error"]
    assert json.loads((tmp_path / ".records" / "b.json").read_text())["status"] == "failed"
    assert not list((tmp_path / ".attempts" / "run1").iterdir())  # a finished scan leaves no attempt behind


def test_third_start_after_two_worker_deaths_records_failed(tmp_path, counted_loads):
    attempts = dask_scan.attempts_file(tmp_path, "run1", "a")
    attempts.parent.mkdir(parents=True)
    attempts.write_text("node1 pid 11 at 1\nnode2 pid 22 at 2\n")  # two starts that never finished
    options = workers.CaseOptions(out=str(tmp_path), device="cpu")
    row = dask_scan.run_scan(batch_case("a", str(tmp_path / "a.nii.gz")), options, None, 1, "run1")
    assert row["status"] == "failed" and "died while running it 2 times (last: node2 pid 22" in row["error"]
    assert counted_loads == []  # not run a third time
    assert json.loads((tmp_path / ".records" / "a.json").read_text())["error"] == row["error"]
    assert not attempts.exists()


def test_a_worker_with_another_model_refuses_the_scan(tmp_path, counted_loads):
    options = workers.CaseOptions(out=str(tmp_path), device="cpu", settings={"model": "other", "model_version": "9"})
    row = dask_scan.run_scan(batch_case("a", str(tmp_path / "a.nii.gz")), options, None, 1, "run1")
    assert row["status"] == "failed" and "the client other 9" in row["error"]
    assert json.loads((tmp_path / ".records" / "a.json").read_text())["status"] == "failed"


def test_fault_hook_is_inert_unless_set(monkeypatch):
    slept: list[float] = []
    monkeypatch.setattr(dask_scan.time, "sleep", slept.append)
    monkeypatch.delenv(dask_scan.FAULT_ENV, raising=False)
    dask_scan._test_fault("a", 1)
    monkeypatch.setenv(dask_scan.FAULT_ENV, "a:slow=3,b:crash")
    dask_scan._test_fault("a", 2)  # slow only at the first attempt
    dask_scan._test_fault("c", 1)
    assert slept == []
    dask_scan._test_fault("a", 1)
    assert slept == [3.0]


@pytest.mark.parametrize(
    ("extra", "env", "message"),
    [
        (["--scheduler", "local:2", "--workers", "2"], {}, "cannot be combined with --workers"),
        (["--scheduler", "local:0"], {}, "local:N needs N >= 1"),
        ([], {"WORLD_SIZE": "2", "RANK": "0"}, "does not run under torchrun"),
    ],
)
def test_refused_in_one_line(tmp_path, capsys, monkeypatch, extra, env, message):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    code = main(["batch", str(tmp_path / "a.nii.gz"), "--out", str(tmp_path / "out"), "--device", "cpu", *extra])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err


def test_without_dask_the_scheduler_option_says_what_to_install(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if the cluster extra were not installed
    monkeypatch.delitem(sys.modules, "LatentAnomalyLib.cohort.dask_backend", raising=False)
    code = main(["batch", str(tmp_path / "a.nii.gz"), "--out", str(tmp_path / "out"), "--scheduler", "tcp://x:1"])
    assert code == 2 and "pip install 'latent-anomaly[cluster]'" in capsys.readouterr().err


def test_library_core_never_imports_dask():
    code = "import sys, LatentAnomalyLib.cli.main, LatentAnomalyLib.cohort.batch, LatentAnomalyLib.cohort.dask_scan; "
    code += "print(sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')))"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"
