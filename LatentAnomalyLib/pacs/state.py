"""What a ``pacs`` run has done, kept in its ``--out`` folder so that a restart never processes a series twice.

One JSON record per source series, ``state/<SeriesInstanceUID>.json``, written atomically when the series is
finished: ``done`` (with the UIDs stored in the PACS) or ``failed`` (with its one-line reason). A series without a
record is processed; one killed half-way has no record and is processed again, and the PACS is asked before storing,
so what an earlier attempt already stored is not stored twice. The folder is locked while a run uses it.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..io.publish import folder_lock
from ..io.write import write_json

UID = re.compile(r"[0-9]+(\.[0-9]+)*")


def _check_uid(uid: str) -> str:
    if not UID.fullmatch(uid) or len(uid) > 64:
        raise InputError(f"{uid!r}: not a DICOM UID")
    return uid


class RunState:
    """The records of the series done or failed under ``folder``."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.records = self.folder / "state"

    @contextlib.contextmanager
    def locked(self) -> Iterator[RunState]:
        """Create the folders and hold the run's lock (a second run on the same folder is refused in one line)."""
        self.records.mkdir(parents=True, exist_ok=True)
        with folder_lock(self.folder, self.folder / ".pacs.lock", holder="pacs run"):
            yield self

    def record(self, series: str) -> dict[str, Any] | None:
        path = self.records / f"{_check_uid(series)}.json"
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, json.JSONDecodeError):
            return None  # an unreadable record is as good as none: the PACS is asked before storing

    def finished(self, series: str, retry_failed: bool = False) -> bool:
        """Whether ``series`` needs no work: done, or failed (unless ``retry_failed``)."""
        record = self.record(series)
        return record is not None and (record.get("status") == "done" or not retry_failed)

    def done(self, series: str, study: str, stored: list[str], found: list[str], timings: dict[str, float]) -> None:
        record = {"status": "done", "study": study, "stored": stored, "already_in_pacs": found, "timings_s": timings}
        self._write(series, record)

    def failed(self, series: str, study: str, reason: str) -> None:
        self._write(series, {"status": "failed", "study": study, "reason": reason})

    def _write(self, series: str, record: dict[str, Any]) -> None:
        record = {"series": series, **record, "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        write_json(record, self.records / f"{_check_uid(series)}.json")

    def counts(self) -> dict[str, int]:
        statuses = [self.record(p.stem) for p in self.records.glob("*.json")]
        return {s: sum(1 for r in statuses if r and r.get("status") == s) for s in ("done", "failed")}
