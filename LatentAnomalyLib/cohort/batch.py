"""Batch detection for cohorts: resumable, parallel, shardable; one bad scan never stops the rest.

``run_batch`` (given :class:`BatchOptions`) decides the cases (:mod:`.inputs`), skips those an earlier run
finished (:mod:`.records`), runs the rest in this process or a worker pool (:mod:`.workers`), and writes the
ranked table ``scores.csv``/``scores.json``; under torchrun each rank does its share and rank 0 merges
(:mod:`.shards`).
"""

from __future__ import annotations

import contextlib
import shutil
import sys
import time
from dataclasses import dataclass
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
from .shards import distributed_rank, parse_shard, wait_for_shards, write_shard
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
    shard_timeout: float = 24 * 3600.0  # under torchrun: how long rank 0 waits for the others
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


def _shares(options: BatchOptions) -> tuple[int, int, bool, int | None]:
    """(index, count, distributed, local rank): which share of the cases this process runs."""
    rank, world, local = distributed_rank()
    if world > 1:
        if options.shard != "1/1":
            raise InputError("--shard cannot be combined with torchrun (RANK/WORLD_SIZE set); use one or the other")
        return rank, world, True, local
    index, count = parse_shard(options.shard)
    return index, count, False, None


def run_batch(options: BatchOptions) -> dict[str, Any]:
    """Run detection on every case ``options`` names; return counts, failures and the table path."""
    from ..bundle.model import Model

    if options.workers < 1 or options.threads < 1:
        raise InputError(f"--workers and --threads must be at least 1, got {options.workers} and {options.threads}")
    if options.export not in ("flagged", "all", "none"):
        raise InputError(f"--export must be flagged, all or none, got {options.export!r}")
    cases, notes = discover(list(options.inputs), options.list_file)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    index, count, distributed, local_rank = _shares(options)
    shares = {i: cases[i::count] for i in range(count)}
    mine = shares[index]
    out = Path(options.out)
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
    # one batch run (or one shard of a distributed run) writes into a folder at a time
    lock = out / (".batch.lock" if count == 1 else f".batch-{index + 1}-of-{count}.lock")
    with folder_lock(out, lock, holder="batch run") as leftovers:
        for note in [*leftovers, *_remove_stale_staging(out, mine)]:
            print(f"note: {note}", file=sys.stderr)
        try:
            return _run_cases_into(out, options, model, shares, mine, index, count, distributed, local_rank, dicom_seg)
        finally:  # after an interruption too: stopped workers leave their cases' staging folders
            _remove_stale_staging(out, mine)
            with contextlib.suppress(OSError):
                (out / PARTIAL).rmdir()  # only if empty: another rank may still be writing there


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

    def __init__(self, out: Path, rows: list[dict[str, Any]], stem: str | None, every_s: float = 10.0):
        self.out, self.rows, self.stem, self.every_s = out, list(rows), stem, every_s
        self.last = -float("inf")

    def add(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        if self.stem is not None and time.monotonic() - self.last >= self.every_s:
            write_scores(self.rows, self.out, stem=self.stem)
            self.last = time.monotonic()


def _run_cases_into(
    out: Path,
    options: BatchOptions,
    model: Any,
    shares: dict[int, list[Any]],
    mine: list[Any],
    index: int,
    count: int,
    distributed: bool,
    local_rank: int | None,
    dicom_seg: bool,
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
    earlier, todo = [], []
    for case in mine:
        record = None if not options.resume else load_record(out, case.case_id, case.path, settings, case.age)
        (earlier if record else todo).append(record or case)
    label = f"rank {index}/{count}" if distributed else "batch"
    progress = BatchProgress(len(mine), options.progress, label=label)
    progress.skipped(len(earlier))
    if options.workers == 1:
        if local_rank is not None and options.device != "cpu":
            _use_local_gpu(local_rank)
        use_model(model)
    stem = None if distributed else ("scores" if count == 1 else f"scores-shard-{index + 1}-of-{count}")
    so_far = _TableSoFar(out, earlier, stem)

    def case_done(row: dict[str, Any]) -> None:
        so_far.add(row)
        progress.case_done(row["case_id"], _status_text(row))

    ran = run_cases(
        todo,
        case_options,
        options.workers,
        options.model,
        case_done,
        threads=options.threads,
        cuda_index=local_rank if options.device != "cpu" else None,
    )
    rows = [*earlier, *ran]
    own_failed = [r for r in rows if r["status"] != "done"]
    table = None
    if distributed:
        write_shard(out, index, count, [c.case_id for c in mine], rows)
        if index == 0:
            expected = {i: [c.case_id for c in share] for i, share in shares.items()}
            rows = wait_for_shards(out, count, expected, options.shard_timeout)
            table = write_scores(rows, out)
    elif count > 1:
        table = write_scores(rows, out, stem=f"scores-shard-{index + 1}-of-{count}")
    else:
        table = write_scores(rows, out)
    failed = [r for r in rows if r["status"] != "done"] if table is not None else own_failed
    return {
        "total": len(rows),
        "done": sum(1 for r in ran if r["status"] == "done"),
        "skipped": len(earlier),
        "failed": len(failed),
        "flagged": sum(1 for r in rows if r.get("flagged") == "yes"),
        "failures": [f"{r['case_id']}: {r.get('error', '')}" for r in failed],
        "warnings": [f"{r['case_id']}: {w}" for r in rows for w in r.get("warnings") or []],
        "table": str(table) if table else str(out / ".shards"),
    }


def _status_text(row: dict[str, Any]) -> str:
    if row["status"] != "done":
        return f"failed ({row.get('error', '')})"
    flag = ", flagged" if row.get("flagged") == "yes" else ""
    return f"done in {row.get('seconds', 0):.1f}s (score {row['subject_score']:.2f}{flag})"


def _use_local_gpu(local_rank: int) -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank % torch.cuda.device_count())
