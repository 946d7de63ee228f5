"""Batch detection for cohorts: resumable, parallel, shardable; one bad scan never stops the rest.

``run_batch`` (given :class:`BatchOptions`) decides the cases (:mod:`.inputs`), skips those an earlier run
finished (:mod:`.records`), runs the rest in this process, a worker pool (:mod:`.workers`) or on a Dask
cluster (``--scheduler``, :mod:`.dask_backend`), and writes the ranked table ``scores.csv``/``scores.json``.
``--shard i/n`` runs a static share and writes its own table. Batch no longer runs under torchrun (Dask
spreads a cohort and moves a dead node's work); torchrun stays for training.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..io.publish import check_not_inside_inputs, folder_lock
from ..outputs.detection import check_scorer
from ..progress import BatchProgress
from ..score.age_bands import cohort_notes
from ..score.conformal import load_sets
from .inputs import discover
from .paths import PARTIAL, staging_folder
from .records import load_record, write_scores
from .workers import CaseOptions, run_cases, use_model


@dataclass(frozen=True)
class BatchOptions:
    """What `latent-anomaly batch` runs: which scans, with which model and settings, into which folder."""

    inputs: tuple[str, ...]  # folders of scans, CSV/text lists or scan paths
    out: str | Path
    list_file: str | None = None  # a CSV or text list, as if given in inputs
    export: str = "flagged"  # whose images to keep: flagged, all or none
    dicom_seg: bool = False
    workers: int = 1
    threads: int = 1
    model: str | None = None  # bundle folder (default: the bundled model)
    scorer: str | None = None
    device: str = "auto"
    skull: str = "auto"
    threshold: float | None = None
    alpha: float = 0.05
    regions: str | None = None
    shard: str = "1/1"  # "i/n": the i-th of n interleaved shares
    scheduler: str | None = None  # a Dask scheduler address, or local:N for a local cluster of N workers
    resume: bool = True  # skip cases an earlier run finished
    progress: str = "auto"


def _prepare_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a folder; choose another --out")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InputError(f"{out}: cannot create the output folder ({error.strerror or error})") from None


def _settings(options: BatchOptions, model: Any) -> dict[str, Any]:
    """What a finished case's result depends on; a record made with other settings is redone."""
    return {
        "model": model.name,
        "model_version": model.version,
        "scorer": options.scorer or model.default_scorer,
        "skull": options.skull,
        "threshold": options.threshold,
        "alpha": options.alpha,
        "regions": options.regions,
    }


def parse_shard(text: str) -> tuple[int, int]:
    """``i/n`` (1-based) as a 0-based (index, count)."""
    match = re.fullmatch(r"(\d+)/(\d+)", text)
    if not match or not 1 <= int(match.group(1)) <= int(match.group(2)):
        raise InputError(f"--shard must look like i/n with 1 <= i <= n, got {text!r}")
    return int(match.group(1)) - 1, int(match.group(2))


def _check(options: BatchOptions) -> None:
    if options.workers < 1 or options.threads < 1:
        raise InputError(f"--workers and --threads must be at least 1, got {options.workers} and {options.threads}")
    if options.export not in ("flagged", "all", "none"):
        raise InputError(f"--export must be flagged, all or none, got {options.export!r}")
    if int(os.environ.get("WORLD_SIZE", "1") or 1) > 1:
        raise InputError("batch does not run under torchrun; spread a cohort with --scheduler (a Dask cluster)")
    if options.scheduler is not None and (options.workers > 1 or options.shard != "1/1"):
        raise InputError(
            "--scheduler cannot be combined with --workers or --shard: the cluster's workers run the scans"
        )


def run_batch(options: BatchOptions) -> dict[str, Any]:
    """Run detection on every case ``options`` names; return counts, failures and the table path."""
    from ..bundle.model import Model

    _check(options)
    cases, notes = discover(list(options.inputs), options.list_file)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    index, count = parse_shard(options.shard)
    mine = cases[index::count]
    out = Path(options.out)
    if options.scheduler is not None:  # workers elsewhere: paths that mean the same on every machine
        out = out.absolute()
        mine = [replace(c, images={k: str(Path(v).absolute()) for k, v in c.images.items()}) for c in mine]
    dicom_seg = options.dicom_seg
    if dicom_seg:
        from ..outputs.dicom_seg import require_highdicom

        require_highdicom()
    model = Model.load(options.model)
    check_scorer(model, options.scorer)
    scorer = options.scorer or model.default_scorer
    try:  # before any scan is read: an age column the model cannot use, alphas no scan can reach
        age_notes = cohort_notes(load_sets(model, scorer), [c.age for c in cases], options.alpha,
                                 f"{model.name} {model.version} ({scorer})")
    except ValueError as error:
        raise InputError(str(error)) from None
    for note in age_notes:
        print(f"note: {note}", file=sys.stderr)
    check_not_inside_inputs(out, [case.path for case in cases])
    _prepare_out(out)  # after every check: a refused run leaves no output folder
    # one batch run (or one shard) writes into a folder at a time
    lock = out / (".batch.lock" if count == 1 else f".batch-{index + 1}-of-{count}.lock")
    with folder_lock(out, lock, holder="batch run") as leftovers:
        for note in leftovers:
            print(f"note: {note}", file=sys.stderr)
        try:
            return _run_cases_into(out, options, model, mine, index, count, dicom_seg)
        finally:  # after an interruption too: stopped workers leave their cases' staging folders
            if options.scheduler is None:  # a cluster's workers may still publish: the next run cleans up
                _remove_stale_staging(out, mine)
            with contextlib.suppress(OSError):
                (out / PARTIAL).rmdir()  # only if empty: another shard may still be writing there


def _remove_stale_staging(out: Path, mine: list[Any]) -> list[str]:
    """Remove the half-written case folders a killed run left in ``<out>/.partial`` (this run's cases only: another
    shard may be writing its own there); a note for the user if there were any."""
    stale = [staging_folder(out, case.case_id) for case in mine]
    stale = [folder for folder in stale if folder.exists()]
    for folder in stale:
        shutil.rmtree(folder, ignore_errors=True)
    if not stale:
        return []
    return [f"removed {len(stale)} unfinished case folder(s) in {out / PARTIAL} left by an interrupted batch run"]


class _TableSoFar:
    """``scores.csv`` of the cases finished so far, rewritten atomically while a batch runs (at most every
    ``every_s`` seconds: the whole table is rewritten each time), so a long cohort can be looked at before it ends."""

    def __init__(self, out: Path, rows: list[dict[str, Any]], stem: str, every_s: float = 10.0):
        self.out, self.rows, self.stem, self.every_s = out, list(rows), stem, every_s
        self.last = -float("inf")

    def add(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        if time.monotonic() - self.last >= self.every_s:
            write_scores(self.rows, self.out, stem=self.stem)
            self.last = time.monotonic()


@contextlib.contextmanager
def _runner(options: BatchOptions, out: Path, model: Any, progress: BatchProgress) -> Iterator[Any]:
    """``run(cases, case_options, on_row)`` for this machine's processes or for a Dask cluster."""
    if options.scheduler is None:
        if options.workers == 1:
            use_model(model)
        yield lambda cases, case_options, on_row: run_cases(
            cases, case_options, options.workers, options.model, on_row, threads=options.threads
        )
        return
    try:
        from .dask_backend import cluster_runner
    except ModuleNotFoundError as error:
        if error.name not in ("dask", "distributed"):
            raise
        raise InputError("--scheduler needs Dask: pip install 'latent-anomaly[cluster]'") from None
    model_path = str(Path(options.model).absolute()) if options.model else None
    with cluster_runner(options.scheduler, out, model_path, options.threads, progress.tick) as run:
        yield run


def _run_cases_into(
    out: Path, options: BatchOptions, model: Any, mine: list[Any], index: int, count: int, dicom_seg: bool
) -> dict[str, Any]:
    """The batch itself, under the output folder's lock: resume, run, and write the score table."""
    settings = _settings(options, model)
    case_options = CaseOptions(
        out=str(out),
        scorer=options.scorer,
        device=options.device,
        skull=options.skull,
        threshold=options.threshold,
        alpha=options.alpha,
        regions=options.regions,
        export=options.export,
        settings=settings,
        dicom_seg=dicom_seg,
    )
    progress = BatchProgress(len(mine), options.progress)
    stem = f"scores-shard-{index + 1}-of-{count}" if count > 1 else "scores"
    with _runner(options, out, model, progress) as run:  # a cluster first: it may finish an interrupted run's scans
        for note in _remove_stale_staging(out, mine):  # after that: nothing of an earlier run is still writing
            print(f"note: {note}", file=sys.stderr)
        earlier, todo = [], []
        for case in mine:
            record = None if not options.resume else load_record(out, case.case_id, case.path, settings, case.age)
            (earlier if record else todo).append(record or case)
        progress.skipped(len(earlier))
        so_far = _TableSoFar(out, earlier, stem)

        def on_row(row: dict[str, Any], running: int | None = None) -> None:
            so_far.add(row)
            progress.case_done(row["case_id"], _status_text(row), failed=row["status"] != "done", running=running)

        ran = run(todo, case_options, on_row)
    rows = [*earlier, *ran]
    table = write_scores(rows, out, stem=stem)
    failed = [r for r in rows if r["status"] != "done"]
    return {
        "total": len(rows),
        "done": sum(1 for r in ran if r["status"] == "done"),
        "skipped": len(earlier),
        "failed": len(failed),
        "flagged": sum(1 for r in rows if r.get("flagged") == "yes"),
        "failures": [f"{r['case_id']}: {r.get('error', '')}" for r in failed],
        "warnings": [f"{r['case_id']}: {w}" for r in rows for w in r.get("warnings") or []],
        "table": str(table),
    }


def _status_text(row: dict[str, Any]) -> str:
    if row["status"] != "done":
        return f"failed ({row.get('error', '')})"
    flag = ", flagged" if row.get("flagged") == "yes" else ""
    return f"done in {row.get('seconds', 0):.1f}s (score {row['subject_score']:.2f}{flag})"
