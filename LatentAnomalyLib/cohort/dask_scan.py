"""What one Dask task runs on a worker: one scan, with the model the worker loaded once.

Kept apart from :mod:`.dask_backend` (the client side) because it imports nothing from Dask: it is
plain code that a worker process calls. It adds three things to :func:`.workers.process_case`:

- the model is loaded once per worker process (the first scan it runs), with the batch's torch
  thread count, so results are bit-identical to ``--workers 1``;
- attempts are counted in ``<out>/.attempts/<run>/<case_id>`` (one line per start, written before
  the scan runs, removed when its record is written): a scan whose worker died twice while running it
  (a line left by each) is recorded as failed at its third start instead of killing a third worker;
- a fault hook for the tests only (``LATENT_ANOMALY_TEST_FAULT``, see :func:`_test_fault`).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

from ..case import Case
from . import workers
from .paths import check_case_id
from .records import save_record

ATTEMPTS = ".attempts"
MAX_WORKER_DEATHS = 2  # a scan that took down this many workers is recorded as failed
FAULT_ENV = "LATENT_ANOMALY_TEST_FAULT"
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's malloc.h

_LOAD_LOCK = threading.Lock()
_LOADED: tuple[str | None, int] | None = None  # (model path, threads) of the model this process holds


def attempts_file(out: Path, run_id: str, case_id: str) -> Path:
    return out / ATTEMPTS / run_id / check_case_id(case_id)


def undo_malloc_trim() -> None:
    """Give back glibc's usual handling of large arrays in a worker that Dask's nanny started.

    The nanny starts workers with ``MALLOC_TRIM_THRESHOLD_=65536``, which also turns off glibc's adaptive mmap
    threshold: every freed array over 128 KB goes back to the OS and the next one is faulted in afresh. On the IXI
    sample that is 4 to 9x the page faults and 1.3 to 1.4 s more system time per scan against a plain process
    (``benchmarks/dask_worker_malloc.py``). 32 MB and 64 MB are where glibc's adaptive thresholds settle.
    """
    if not os.environ.get("MALLOC_TRIM_THRESHOLD_") or not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(M_MMAP_THRESHOLD, 32 * 2**20)
        libc.mallopt(M_TRIM_THRESHOLD, 64 * 2**20)


def _ensure_model(model_path: str | None, threads: int) -> None:
    """Load the model on the first scan a worker runs; later scans reuse it (one load per worker)."""
    global _LOADED
    with _LOAD_LOCK:
        if (model_path, threads) != _LOADED:
            undo_malloc_trim()
            workers.init_worker(model_path, threads)
            _LOADED = (model_path, threads)


def _test_fault(case_id: str, attempt: int) -> None:
    """For tests only: ``LATENT_ANOMALY_TEST_FAULT="<case_id>:slow=<s>,<case_id>:crash"`` in the workers' environment.

    ``slow=S`` sleeps S seconds before the first attempt of that case (so a test can kill its worker
    mid-scan); ``crash`` kills the worker process (SIGKILL) at every attempt of that case. Unset in
    normal use, where this does nothing.
    """
    spec = os.environ.get(FAULT_ENV, "")
    for item in filter(None, (part.strip() for part in spec.split(","))):
        target, _, action = item.partition(":")
        if target != case_id:
            continue
        if action.startswith("slow=") and attempt == 1:
            time.sleep(float(action.split("=", 1)[1]))
        elif action == "crash":
            os.kill(os.getpid(), signal.SIGKILL)


def _start_attempt(path: Path) -> int:
    """Record that this process starts the scan; return how many starts came before (each one a dead worker)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        earlier = len(path.read_text().splitlines())
    except FileNotFoundError:
        earlier = 0
    with path.open("a") as handle:  # one short line, appended: what a later attempt counts
        handle.write(f"{socket.gethostname()} pid {os.getpid()} at {time.time():.0f}\n")
        handle.flush()
        os.fsync(handle.fileno())
    return earlier


def run_scan(
    case: Case, options: workers.CaseOptions, model_path: str | None, threads: int, run_id: str
) -> dict[str, Any]:
    """Detect on one case on this worker; return its row (its record and exported folder are written here)."""
    out = Path(options.out)
    attempts = attempts_file(out, run_id, case.case_id)
    earlier = _start_attempt(attempts)
    if earlier >= MAX_WORKER_DEATHS:
        last = attempts.read_text().splitlines()[earlier - 1]
        row = _failed(case, options, f"its worker died while running it {earlier} times (last: {last}); not retried")
        save_record(out, row)
    else:
        _test_fault(case.case_id, earlier + 1)
        _ensure_model(model_path, threads)
        mismatch = _other_model(options.settings)
        if mismatch:
            row = _failed(case, options, mismatch)
            save_record(out, row)
        else:
            row = workers.process_case(case, options)
    attempts.unlink(missing_ok=True)
    return row


def _other_model(settings: dict[str, Any]) -> str:
    """Why this worker's model is not the client's (another install or LATENT_ANOMALY_MODEL there), or ''."""
    model = workers._MODEL
    wanted = (settings.get("model"), settings.get("model_version"))
    if not settings or (model.name, model.version) == wanted:
        return ""
    return (f"this worker loaded model {model.name} {model.version}, the client {wanted[0]} {wanted[1]}; "
            "give the workers the same model (--model on a shared path)")


def _failed(case: Case, options: workers.CaseOptions, error: str) -> dict[str, Any]:
    row = {"case_id": case.case_id, "path": case.path, "age": case.age, "settings": options.settings}
    row.update(status="failed", error=error, flagged="", exported="no", seconds=0.0)
    return row
