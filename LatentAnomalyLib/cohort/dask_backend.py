"""`batch --scheduler`: the cohort's scans as Dask tasks on a distributed cluster (or a local one, ``local:N``).

Why Dask: labs already run it on their clusters (and on SLURM or PBS through dask-jobqueue). Work goes to
whichever worker is free, a scan whose worker dies runs again on another one, and one client sees the whole
cohort. This process is the client: it submits one task per scan (:func:`.dask_scan.run_scan`, the model
loaded once per worker), collects the rows and writes the cohort tables; the workers write each case's
record and exported folder into the shared output folder (atomically, as in every batch run).

Imported only when ``--scheduler`` is given: Dask and distributed are the optional ``cluster`` extra and the
library core never imports them.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import shutil
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dask
from distributed import Client, LocalCluster, as_completed
from distributed.diagnostics.plugin import WorkerPlugin

from ..case import Case
from ..errors import InputError
from .dask_scan import ATTEMPTS, run_scan
from .records import save_record
from .workers import CaseOptions

__all__ = ["cluster_runner", "parse_scheduler"]
LOCAL = re.compile(r"local:(\d+)")
TICK_S = 2.0  # how often the terminal hears how many scans are running while none finishes
Runner = Callable[[list[Case], CaseOptions, Callable[..., None]], list[dict[str, Any]]]


def parse_scheduler(text: str) -> int | None:
    """Workers of a local cluster for ``local:N``; None for a scheduler address (``tcp://host:8786``)."""
    match = LOCAL.fullmatch(text)
    if match:
        if int(match.group(1)) < 1:
            raise InputError(f"--scheduler local:N needs N >= 1, got {text!r}")
        return int(match.group(1))
    if text.startswith("local:"):
        raise InputError(f"--scheduler must be local:N or a scheduler address such as tcp://host:8786, got {text!r}")
    return None


class ExitWithClient(WorkerPlugin):
    """Workers of a ``local:N`` cluster end when the client that started them dies (even by ``kill -9``).

    A worker left behind would keep writing records and race a rerun in the same folder. Workers of a
    cluster of one's own are left alone: they outlive the client by design.
    """

    def __init__(self, client_pid: int, poll_s: float = 1.0):
        self.client_pid = client_pid
        self.poll_s = poll_s

    def setup(self, worker: Any) -> None:
        def watch() -> None:
            while os.getppid() == self.client_pid:
                time.sleep(self.poll_s)
            os._exit(1)

        if os.getppid() == self.client_pid:
            threading.Thread(target=watch, name="client-watchdog", daemon=True).start()


@contextlib.contextmanager
def _client(scheduler: str) -> Iterator[Client]:
    workers = parse_scheduler(scheduler)
    if workers is None:
        try:
            client = Client(scheduler, timeout="30s")
        except (OSError, TimeoutError, ValueError) as error:
            raise InputError(f"{scheduler}: cannot reach the Dask scheduler ({error})") from None
        with client:
            yield client
        return
    # one task at a time per worker (no scan waits behind another on a worker that may die), 1 thread each; no
    # statistical profiler: sampling every thread's stack each 10 ms cost a quarter of 2 workers' speed on 2 cores
    # (benchmarks/cohort_scaling.py: 0.78 of --workers 2 with it, 0.99 without)
    settings = {"distributed.scheduler.worker-saturation": 1.0, "distributed.worker.profile.enabled": False}
    with dask.config.set(settings):
        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
            silence_logs=logging.ERROR,
        )
    try:
        with Client(cluster) as client:
            client.register_plugin(ExitWithClient(os.getpid()), name="latent-anomaly-exit-with-client")
            yield client
    finally:
        cluster.close()


def _executing(prefix: str, dask_worker: Any = None) -> list[str]:
    """On a worker: the keys of this output folder's scans it is running now."""
    return [str(ts.key) for ts in dask_worker.state.executing if str(ts.key).startswith(prefix)]


def _wait_for_earlier_runs(client: Client, prefix: str, poll_s: float = 2.0) -> None:
    """Wait while workers still run scans that an interrupted client of this folder submitted.

    Such a scan goes on after its client died; the rerun would otherwise run it a second time beside it.
    Once they end, their records exist and the rerun skips them.
    """
    told = False
    while True:
        answers = client.run(_executing, prefix, on_error="ignore")  # a worker restarting now has none running
        running = [key for keys in answers.values() for key in keys]
        if not running:
            return
        if not told:
            print(f"note: waiting for {len(running)} scan(s) an interrupted run left running", file=sys.stderr)
            told = True
        time.sleep(poll_s)


def _running(client: Client, prefix: str) -> int:
    """Scans of this run being processed now: assigned to a worker, at most one per worker thread."""
    with contextlib.suppress(Exception):  # progress only: never fail a cohort for it
        assigned = sum(1 for keys in client.processing().values() for key in keys if str(key).startswith(prefix))
        return min(assigned, sum(client.nthreads().values()))
    return 0


def _failed_row(case: Case, options: CaseOptions, error: BaseException) -> dict[str, Any]:
    """The row of a scan whose task itself failed (its workers died, or it could not run there)."""
    name = type(error).__name__
    if name == "KilledWorker":  # the scheduler gave up first (its allowed-failures is below 2)
        reason = f"its worker died while running it ({str(error).split('. ')[0]}); not retried"
    else:
        reason = f"the task failed on the cluster: {name}: {str(error).splitlines()[0] if str(error) else ''}"
    row = {"case_id": case.case_id, "path": case.path, "age": case.age, "settings": options.settings}
    row.update(status="failed", error=reason, flagged="", exported="no", seconds=0.0)
    save_record(Path(options.out), row)
    return row


def _row(client: Client, future: Any, case: Case, options: CaseOptions) -> dict[str, Any] | None:
    """The scan's row; None when its result was lost with a worker before it was read (Dask computes it again)."""
    if future.status == "finished":
        return future.result()
    if future.status == "error":
        return _failed_row(case, options, future.exception())
    if client.status in ("running", "connecting"):
        return None
    raise InputError(f"lost the Dask scheduler while running {case.case_id}; rerun to resume (finished cases are kept)")


def _run_all(
    client: Client, cases: list[Case], options: CaseOptions, model_path: str | None, threads: int,
    on_row: Callable[..., None], tick: Callable[[int], None], prefix: str,
) -> list[dict[str, Any]]:
    """Submit one task per scan, then take the rows as they finish (a batch at a time), ticking while none does."""
    run_id = uuid.uuid4().hex[:12]
    futures = {
        client.submit(run_scan, case, options, model_path, threads, run_id, key=f"{prefix}{run_id}-{case.case_id}",
                      pure=False): case
        for case in cases
    }
    finished, rows, last_tick = as_completed(list(futures)), [], time.monotonic()
    while not finished.is_empty():
        batch = finished.next_batch(block=False)
        if not batch:
            if time.monotonic() - last_tick >= TICK_S:
                tick(_running(client, prefix))
                last_tick = time.monotonic()
            time.sleep(0.2)
            continue
        running = _running(client, prefix)
        for future in batch:
            row = _row(client, future, futures[future], options)
            if row is None:
                finished.add(future)  # yielded again once computed again
                continue
            futures.pop(future)
            future.release()
            rows.append(row)
            on_row(row, running)
    shutil.rmtree(Path(options.out) / ATTEMPTS / run_id, ignore_errors=True)
    with contextlib.suppress(OSError):
        (Path(options.out) / ATTEMPTS).rmdir()  # only if empty
    return rows


@contextlib.contextmanager
def cluster_runner(
    scheduler: str, out: Path, model_path: str | None, threads: int, tick: Callable[[int], None]
) -> Iterator[Runner]:
    """Connect (or start ``local:N``), say where the dashboard is, wait for scans an interrupted run left running,
    and yield ``run(cases, options, on_row)``; ``on_row(row, running)`` is called as each scan ends."""
    prefix = f"latent-anomaly-{hashlib.sha256(str(out.resolve()).encode()).hexdigest()[:10]}-"
    with _client(scheduler) as client:
        info = client.scheduler_info()
        print(f"note: Dask scheduler {info.get('address', scheduler)}, {len(info.get('workers', {}))} worker(s) "
              "now", file=sys.stderr)
        if "dashboard" in info.get("services", {}):
            print(f"note: Dask dashboard: {client.dashboard_link}", file=sys.stderr)
        _wait_for_earlier_runs(client, prefix)
        shutil.rmtree(out / ATTEMPTS, ignore_errors=True)  # no earlier run's scan runs now: its counts are stale

        def run(cases: list[Case], options: CaseOptions, on_row: Callable[..., None]) -> list[dict[str, Any]]:
            return _run_all(client, cases, options, model_path, threads, on_row, tick, prefix) if cases else []

        yield run
