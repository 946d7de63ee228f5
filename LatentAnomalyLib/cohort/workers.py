"""Detection of one case for a batch run, in this process or in a pool of worker processes.

Why processes: the per-scan work (registration, resampling, scoring) is largely single-threaded
Python/ITK, so cases in parallel scale where threads would not. Each worker loads the model once
(in its initializer) and uses its share of the CPU threads, so N workers do not oversubscribe the
machine. Workers are started with ``spawn``: forking a process that already holds torch threads
or a CUDA context is unsafe.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..case import Case
from .paths import case_folder, staging_folder
from .records import save_record
from .thread_budget import set_thread_budget, thread_budget

__all__ = ["CaseOptions", "init_worker", "process_case", "run_cases", "use_model"]
PR_SET_PDEATHSIG = 1  # linux/prctl.h

_MODEL: Any = None  # the model a worker process loaded once


@dataclass(frozen=True)
class CaseOptions:
    out: str
    scorer: str | None = None
    device: str = "auto"
    skull: str = "auto"
    threshold: float | None = None
    export: str = "flagged"
    settings: dict[str, Any] = field(default_factory=dict)
    dicom_seg: bool = False  # exported DICOM series cases also get labelmap.seg.dcm
    alpha: float = 0.05  # conformal subject flag and region rule (see score/conformal.py)
    regions: str | None = None


def die_with_parent(parent_pid: int, poll_s: float = 1.0) -> None:
    """End this worker when the batch process that started it dies (even by ``kill -9``).

    A worker left behind would keep writing records and exports and race a rerun in the same
    folder. On Linux the kernel sends SIGKILL when the parent exits (``PR_SET_PDEATHSIG``); a
    daemon thread watching the parent's pid covers other systems and a parent that died before
    the request was made.
    """
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(poll_s)
        os._exit(1)

    if os.getppid() != parent_pid:
        os._exit(1)
    threading.Thread(target=watch, name="parent-watchdog", daemon=True).start()


def init_worker(model_path: str | None, threads: int, parent_pid: int | None = None) -> None:
    """Per-process setup: exit with the parent, thread budget, and the model (loaded once)."""
    global _MODEL
    if parent_pid is not None:
        die_with_parent(parent_pid)
    set_thread_budget(threads)
    from ..bundle.model import Model

    _MODEL = Model.load(model_path)


def use_model(model: Any) -> None:
    """Run cases in this process with an already loaded model (``--workers 1``)."""
    global _MODEL
    _MODEL = model


def _one_line(error: BaseException) -> str:
    from ..errors import LatentAnomalyError

    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    text = lines[0] if lines else ""
    if isinstance(error, (LatentAnomalyError, FileNotFoundError)):
        return text or type(error).__name__
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def process_case(case: Case, options: CaseOptions) -> dict[str, Any]:
    """Detect on one case; keep its images if exported; record and return its table row. Never raises.

    Outputs are written to ``<out>/.partial/<case_id>`` and moved into ``<out>/<case_id>`` only when
    complete, so an interruption never leaves a half-written case folder behind.
    """
    from ..io.write import write_json
    from ..outputs.detection import detect_file, output_paths

    out = Path(options.out)
    staging = staging_folder(out, case.case_id)  # refuses ids that would leave ``out``
    final = case_folder(out, case.case_id)
    t0 = time.perf_counter()
    row: dict[str, Any] = {"case_id": case.case_id, "path": case.path, "age": case.age, "settings": options.settings}
    shutil.rmtree(staging, ignore_errors=True)
    dicom_seg = options.dicom_seg and options.export != "none" and Path(case.path).is_dir()
    try:
        summary = detect_file(
            case.path,
            staging,
            model=_MODEL,
            scorer=options.scorer,
            device=options.device,
            skull=options.skull,
            threshold=options.threshold,
            alpha=options.alpha,
            regions=options.regions,
            age=case.age,
            progress="none",
            dicom_seg=dicom_seg,
        )
        flagged = bool(summary["subject_flagged"])
        export = options.export == "all" or (options.export == "flagged" and flagged)
        if export:
            wrote_seg = "dicom_seg" in summary["outputs"]  # not when the series cannot carry one (a warning says why)
            summary["outputs"] = {k: str(v) for k, v in output_paths(final, dicom_seg=wrote_seg).items()}
            write_json(summary, output_paths(staging)["summary"])
            shutil.rmtree(final, ignore_errors=True)
            os.replace(staging, final)
        row.update(
            subject_score=summary["subject_score"],
            subject_threshold=summary["subject_threshold"],
            largest_region_peak=summary.get("subject_region_peak"),  # what decides the flag from model 1.6.0
            p_value=summary.get("subject_p_value"),
            alpha=summary.get("alpha"),
            calibration=(summary.get("conformal") or {}).get("calibration_source"),  # which healthy scans p compares with
            flagged="yes" if flagged else "no",
            flagged_volume_ml=summary["flagged_volume_ml"],
            n_components=summary["n_components"],
            brain_volume_ml=summary.get("brain_volume_ml"),
            status="done",
            error="",
            warnings=summary.get("warnings", []),
            exported="yes" if export else "no",
        )
    except Exception as error:  # one bad scan must not stop a cohort
        row.update(status="failed", error=_one_line(error), flagged="", exported="no")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    row["seconds"] = round(time.perf_counter() - t0, 2)
    save_record(out, row)
    return row


def run_cases(
    cases: list[Case],
    options: CaseOptions,
    workers: int,
    model_path: str | None,
    on_row: Callable[[dict[str, Any]], None],
    threads: int = 1,
) -> list[dict[str, Any]]:
    """Process ``cases`` with ``workers`` processes (1: in this process); call ``on_row`` as each ends.

    Every case runs with ``threads`` threads (torch, BLAS, ITK: :mod:`.thread_budget`) whatever
    ``workers`` is: CPU results depend (in the last bits) on the thread count, and a batch must give
    the same numbers with any number of workers.
    """
    rows = []
    if not cases:
        return rows
    if workers <= 1:
        if _MODEL is None:
            from ..bundle.model import Model

            use_model(Model.load(model_path))
        with thread_budget(threads):
            for case in cases:
                row = process_case(case, options)
                rows.append(row)
                on_row(row)
        return rows
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        max_workers=min(workers, len(cases)),
        mp_context=context,
        initializer=init_worker,
        initargs=(model_path, threads, os.getpid()),
    ) as pool:
        try:
            for row in _as_completed(pool, cases, options, workers):
                rows.append(row)
                on_row(row)
        except BaseException:
            processes = list((getattr(pool, "_processes", None) or {}).values())  # shutdown() forgets them
            _stop_workers(processes)
            pool.shutdown(wait=True, cancel_futures=True)  # the pool's thread ends now, not racing the exit
            raise
    return rows


def _stop_workers(processes: list[Any]) -> None:
    """End a pool's worker processes now (Ctrl-C, SIGTERM): otherwise each would finish the case it holds, and the
    one queued after it, before the batch could exit. The staging folders they leave are removed by the caller."""
    for process in processes:
        with contextlib.suppress(OSError, AttributeError):
            process.kill()
    for process in processes:
        with contextlib.suppress(OSError, AttributeError, ValueError):
            process.join(timeout=10)


def _as_completed(
    pool: ProcessPoolExecutor, cases: list[Case], options: CaseOptions, workers: int
) -> Iterator[dict[str, Any]]:
    """Results as they finish, keeping at most ``2 * workers`` cases queued (cheap to cancel on Ctrl-C)."""
    pending: dict[Future, Case] = {}
    queue = iter(cases)
    for case in queue:
        pending[pool.submit(process_case, case, options)] = case
        if len(pending) >= 2 * workers:
            break
    while pending:
        finished, _ = wait(pending, return_when=FIRST_COMPLETED)
        for future in finished:
            case = pending.pop(future)
            try:
                yield future.result()
            except Exception as error:  # the worker itself died (e.g. out of memory)
                row = {"case_id": case.case_id, "path": case.path, "settings": options.settings}
                row.update(status="failed", error=f"worker process failed: {_one_line(error)}", exported="no")
                save_record(Path(options.out), row)
                yield row
            following = next(queue, None)
            if following is not None:
                pending[pool.submit(process_case, following, options)] = following
