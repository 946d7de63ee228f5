"""`batch --scheduler`: a real `dask scheduler` with two `dask worker` processes on 127.0.0.1, and `local:2`.

Outputs equal `--workers 1` bit for bit; a worker killed with SIGKILL mid-scan has its scan run again elsewhere
(no case lost or duplicated, no half-written folder); a scan that kills its worker twice is recorded as failed and
the run goes on; a client killed with SIGKILL is rerun and resumes from the records. The workers' faults come
from the test-only hook ``LATENT_ANOMALY_TEST_FAULT`` (cohort/dask_scan.py), set in the workers' environment.
"""

from __future__ import annotations

import csv
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from LatentAnomalyLib.cli.main import main

distributed = pytest.importorskip("distributed", reason="the cluster extra (dask, distributed) is not installed")

REPO = Path(__file__).resolve().parents[2]
CPU = ["--device", "cpu", "--progress", "lines"]
FAULTS = "killme:slow=120,crasher:crash,slowpoke:slow=8"  # the workers' test hook (see cohort/dask_scan.py)
pytestmark = [pytest.mark.slow, pytest.mark.skipif(not sys.platform.startswith("linux"), reason="kill -9 on Linux")]


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), **extra}


def _rows(table: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(table.read_text().splitlines()))


def _array(path: Path) -> np.ndarray:
    return sitk.GetArrayFromImage(sitk.ReadImage(str(path)))


def _batch(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    command = [sys.executable, "-m", "LatentAnomalyLib.cli", "batch", *args, *CPU]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env or _env())


def _finish(process: subprocess.Popen, timeout: float = 400) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err


def _attempt_pid(out: Path, case_id: str, timeout: float = 300) -> int:
    """The pid of the worker process that started ``case_id`` (from its attempts file), once it has."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in (out / ".attempts").glob(f"*/{case_id}"):
            lines = path.read_text().splitlines()
            if lines:
                return int(lines[-1].split(" pid ")[1].split()[0])
        time.sleep(0.1)
    raise AssertionError(f"{case_id} never started")


@pytest.fixture(scope="module")
def scans(tmp_path_factory, ixi_sample) -> Path:
    """Two small real scans: the IXI sample and a crop of it (another grid)."""
    folder = tmp_path_factory.mktemp("scans")
    image = sitk.ReadImage(str(ixi_sample))
    sitk.WriteImage(image, str(folder / "ixi.nii.gz"))
    sitk.WriteImage(image[4:, :, 2:], str(folder / "ixi_crop.nii.gz"))
    return folder


@pytest.fixture(scope="module")
def reference(tmp_path_factory, scans) -> Path:
    out = tmp_path_factory.mktemp("reference") / "out"
    options = ["--export", "all", "--device", "cpu", "--progress", "none"]
    assert main(["batch", str(scans), "--out", str(out), *options]) == 0
    return out


@pytest.fixture(scope="module")
def scheduler(tmp_path_factory) -> str:
    """A real `dask scheduler` and two `dask worker` processes (one thread each) on 127.0.0.1."""
    folder = tmp_path_factory.mktemp("cluster")
    info = folder / "scheduler.json"
    processes = [subprocess.Popen(
        [sys.executable, "-m", "dask", "scheduler", "--host", "127.0.0.1", "--port", "0",
         "--dashboard-address", "127.0.0.1:0", "--scheduler-file", str(info)],
        stdout=subprocess.DEVNULL, stderr=open(folder / "scheduler.log", "w"), env=_env(),  # noqa: SIM115
    )]
    try:
        deadline = time.monotonic() + 60
        while not info.is_file() and time.monotonic() < deadline:
            time.sleep(0.2)
        for k in range(2):
            processes.append(subprocess.Popen(
                [sys.executable, "-m", "dask", "worker", "--scheduler-file", str(info), "--nthreads", "1",
                 "--host", "127.0.0.1", "--no-dashboard", "--name", f"w{k}"],
                stdout=subprocess.DEVNULL, stderr=open(folder / f"worker{k}.log", "w"),  # noqa: SIM115
                env=_env(LATENT_ANOMALY_TEST_FAULT=FAULTS),
            ))
        with distributed.Client(scheduler_file=str(info), timeout="60s") as client:
            client.wait_for_workers(2, timeout=120)
            address = client.scheduler.address
        yield address
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def _same_as_reference(out: Path, reference: Path, cases: tuple[str, ...] = ("ixi", "ixi_crop")) -> None:
    for case in cases:
        for name in ("heatmap.nii.gz", "labelmap.nii.gz"):
            assert np.array_equal(_array(out / case / name), _array(reference / case / name)), (case, name)
    ours = {r["case_id"]: r for r in _rows(out / "scores.csv")}
    for row in _rows(reference / "scores.csv"):
        mine = dict(ours[row["case_id"]])
        assert {**mine, "seconds": "", "rank": "", "path": ""} == {**row, "seconds": "", "rank": "", "path": ""}


def test_local_cluster_gives_the_outputs_of_one_worker(tmp_path, scans, reference):
    out = tmp_path / "out"
    code, stdout, stderr = _finish(_batch(str(scans), "--out", str(out), "--export", "all", "--scheduler", "local:2"))
    assert code == 0, stderr[-3000:]
    assert "note: Dask dashboard: http://127.0.0.1:" in stderr
    assert "2 done, 0 already done, 0 failed" in stdout and "running" in stdout and "/min" in stdout
    assert [r["case_id"] for r in _rows(out / "scores.csv")] == [r["case_id"] for r in _rows(reference / "scores.csv")]
    _same_as_reference(out, reference)
    assert sorted(p.name for p in out.iterdir()) == [".records", "ixi", "ixi_crop", "scores.csv", "scores.json"]


def test_worker_killed_mid_scan_runs_it_elsewhere(tmp_path, scans, reference, scheduler):
    cohort = tmp_path / "cohort"
    shutil.copytree(scans, cohort)
    shutil.copy(cohort / "ixi.nii.gz", cohort / "killme.nii.gz")  # slow at its first attempt (the test hook)
    out = tmp_path / "out"
    client = _batch(str(cohort), "--out", str(out), "--export", "all", "--scheduler", scheduler)
    os.kill(_attempt_pid(out, "killme"), signal.SIGKILL)
    code, _, stderr = _finish(client)
    assert code == 0, stderr[-3000:]
    rows = _rows(out / "scores.csv")
    assert sorted(r["case_id"] for r in rows) == ["ixi", "ixi_crop", "killme"]  # none lost, none twice
    assert all(r["status"] == "done" for r in rows)
    _same_as_reference(out, reference)
    assert np.array_equal(_array(out / "killme" / "heatmap.nii.gz"), _array(reference / "ixi" / "heatmap.nii.gz"))
    assert sorted(p.name for p in (out / "killme").iterdir()) == ["heatmap.nii.gz", "labelmap.nii.gz", "summary.json"]
    assert not (out / ".partial").exists() and not (out / ".attempts").exists()


def test_scan_that_kills_its_worker_twice_is_recorded_failed(tmp_path, scheduler):
    out = tmp_path / "out"
    scans = [str(tmp_path / "crasher.nii.gz"), str(tmp_path / "gone.nii.gz")]  # gone: a missing file, fails fast
    code, _, stderr = _finish(_batch(*scans, "--out", str(out), "--scheduler", scheduler))
    assert code == 3, stderr[-3000:]
    rows = {r["case_id"]: r for r in _rows(out / "scores.csv")}
    assert rows["crasher"]["status"] == "failed"
    assert "worker died while running it 2 times" in rows["crasher"]["error"]
    assert rows["gone"]["status"] == "failed" and "no such file" in rows["gone"]["error"]
    assert "failed: crasher: its worker died while running it 2 times" in stderr


def test_client_killed_then_rerun_resumes_from_records(tmp_path, scans, scheduler):
    cohort = tmp_path / "cohort"
    cohort.mkdir()
    shutil.copy(scans / "ixi_crop.nii.gz", cohort / "slowpoke.nii.gz")  # sleeps 8 s first (the test hook)
    out = tmp_path / "out"
    first = _batch(str(cohort), str(tmp_path / "gone.nii.gz"), "--out", str(out), "--export", "all",
                   "--scheduler", scheduler)
    _attempt_pid(out, "slowpoke")
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    assert not (out / "scores.csv").exists()
    code, stdout, stderr = _finish(_batch(str(cohort), str(tmp_path / "gone.nii.gz"), "--out", str(out), "--export",
                                          "all", "--scheduler", scheduler))
    assert code == 3, stderr[-3000:]  # gone.nii.gz fails again; slowpoke finished by the first run's worker
    assert "note: waiting for 1 scan(s) an interrupted run left running" in stderr
    assert "0 done, 1 already done, 1 failed" in stdout
    rows = _rows(out / "scores.csv")
    assert sorted((r["case_id"], r["status"]) for r in rows) == [("gone", "failed"), ("slowpoke", "done")]
    assert sorted(p.name for p in (out / "slowpoke").iterdir()) == ["heatmap.nii.gz", "labelmap.nii.gz",
                                                                     "summary.json"]
    assert not (out / ".partial").exists()


def test_local_cluster_workers_exit_with_a_killed_client(tmp_path, scans):
    import psutil

    out = tmp_path / "out"
    shutil.copy(scans / "ixi_crop.nii.gz", tmp_path / "killme.nii.gz")
    client = _batch(str(tmp_path / "killme.nii.gz"), "--out", str(out), "--scheduler", "local:2",
                    env=_env(LATENT_ANOMALY_TEST_FAULT=FAULTS))
    worker = psutil.Process(_attempt_pid(out, "killme"))  # sleeping in its first attempt
    family = psutil.Process(client.pid).children(recursive=True)
    assert worker in family
    client.send_signal(signal.SIGKILL)
    client.wait(timeout=30)
    _, alive = psutil.wait_procs(family, timeout=30)
    assert not alive, f"still running after the client was killed: {[p.pid for p in alive]}"
    assert not (out / ".records").exists()  # killme never finished: the rerun will run it
