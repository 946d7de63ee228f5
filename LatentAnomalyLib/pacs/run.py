"""The ``pacs`` loop: find the series to analyse, process those not yet done, once or every ``watch_s`` seconds.

The DICOMweb service is asked first (QIDO-RS), so wrong credentials or a wrong URL end the run in one line before the
model is loaded. Series are processed by ``workers`` threads sharing one model; the state folder's lock keeps a
second run off the same folder. A PACS that stays unreachable beyond the retry policy ends the run (exit 2): what is
recorded is kept, and the next run goes on from there.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .credentials import load_credentials
from .dicomweb import DicomWebClient, RetryPolicy
from .selection import Rule, parse_rules, selected
from .series_job import DetectSettings, SeriesJob, SeriesRef
from .state import RunState

STUDY, SERIES = "0020000D", "0020000E"


@dataclass
class PacsOptions:
    """The options of ``latent-anomaly pacs`` (see ``cli/pacs.py``)."""

    url: str
    out: str | Path
    watch_s: float | None = None
    study: str | None = None
    series_match: Sequence[str] = ()
    alpha: float = 0.05
    workers: int = 1
    credentials: str | Path | None = None
    model: str | Path | None = None
    device: str = "auto"
    scorer: str | None = None
    retry_for_s: float = 600.0
    retry_failed: bool = False
    key_slices: bool = False
    settings: DetectSettings = field(init=False)

    def __post_init__(self) -> None:
        self.settings = DetectSettings(
            alpha=self.alpha, device=self.device, scorer=self.scorer, key_slices=self.key_slices
        )


def stderr_log(message: str) -> None:
    """One line per event on stderr, with the time; only UIDs and reasons, never patient data."""
    print(f"{time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


def find_series(client: DicomWebClient, rules: Sequence[Rule], study: str | None) -> tuple[list[SeriesRef], int]:
    """The MR series whose attributes satisfy ``rules`` (in the PACS's order) and how many MR series were refused."""
    found = client.search_series({"Modality": "MR"}, study=study, include=sorted({r.tag for r in rules}))
    chosen, refused = [], 0
    for item in found:
        study_uid = (item.get(STUDY, {}).get("Value") or [study])[0]
        series_uid = (item.get(SERIES, {}).get("Value") or [None])[0]
        if not study_uid or not series_uid:
            continue

        def metadata(study_uid: str = study_uid, series_uid: str = series_uid) -> dict[str, Any] | None:
            return next(iter(client.series_metadata(study_uid, series_uid)), None)

        if selected(item, rules, metadata):
            chosen.append(SeriesRef(str(study_uid), str(series_uid)))
        else:
            refused += 1
    return chosen, refused


def run_pacs(options: PacsOptions, log: Callable[[str], None] = stderr_log) -> dict[str, Any]:
    """Run the PACS door; return counts of this run: found, refused, done, failed, already (done by an earlier run)."""
    from ..bundle.model import Model
    from ..errors import InputError

    if options.workers < 1:
        raise InputError(f"--workers must be at least 1, got {options.workers}")
    try:
        import highdicom  # noqa: F401
        import pydicom  # noqa: F401
    except ImportError:
        raise InputError("the pacs command needs highdicom and pydicom: pip install 'latent-anomaly[dicom]'") from None
    rules = parse_rules(options.series_match)
    client = DicomWebClient(
        options.url, load_credentials(options.credentials), RetryPolicy(retry_for_s=options.retry_for_s), log=log
    )
    state = RunState(options.out)
    report = {"found": 0, "refused": 0, "done": 0, "failed": 0, "already": 0}
    model = None
    with state.locked():
        while True:
            series, refused = find_series(client, rules, options.study)
            todo = [s for s in series if not state.finished(s.series, options.retry_failed)]
            report.update(found=len(series), refused=refused, already=len(series) - len(todo))
            if todo and model is None:
                model = Model.load(options.model)
            if todo:
                log(f"{len(todo)} series to analyse ({len(series) - len(todo)} done before, {refused} not matched)")
                job = SeriesJob(client, state, model, options.settings, log)  # no per-series state: shared by threads
                with ThreadPoolExecutor(max_workers=options.workers) as pool:
                    outcomes = list(pool.map(job.run, todo))
                for outcome in ("done", "failed"):
                    report[outcome] += outcomes.count(outcome)
            if options.watch_s is None:
                return report
            time.sleep(options.watch_s)
