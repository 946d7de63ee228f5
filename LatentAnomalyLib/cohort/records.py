"""Per-case result records and the ranked cohort table.

Why records: only flagged scans (by default) keep their images, yet every scan's result must
survive an interruption so a restart skips it. Each finished case writes one small JSON file,
``<out>/.records/<case_id>.json``, atomically and last; a case counts as done only if its record
exists and was made with the same model and settings.
"""

from __future__ import annotations

import csv
import io as _io
import json
from pathlib import Path
from typing import Any

from ..io.write import atomic_path, write_json
from .paths import case_folder, record_path

__all__ = ["SCORE_COLUMNS", "load_record", "rank_rows", "save_record", "write_scores"]
SCORE_COLUMNS = (
    "rank",
    "case_id",
    "path",
    "age",
    "p_value",
    "alpha",
    "calibration",
    "subject_score",
    "subject_threshold",
    "largest_region_peak",
    "flagged",
    "flagged_volume_ml",
    "n_components",
    "brain_volume_ml",
    "status",
    "error",
    "warnings",
    "exported",
    "seconds",
)


def save_record(out: Path, row: dict[str, Any]) -> None:
    write_json(row, record_path(out, row["case_id"]))


def load_record(
    out: Path, case_id: str, path: str, settings: dict[str, Any], age: float | None = None
) -> dict[str, Any] | None:
    """The earlier result of a case, if it finished with the same input path, age, model and settings."""
    try:
        row = json.loads(record_path(out, case_id).read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if row.get("status") != "done" or row.get("path") != path or row.get("settings") != settings:
        return None
    if row.get("age") != age:
        return None
    if row.get("exported") == "yes" and not (case_folder(out, case_id) / "summary.json").is_file():
        return None  # its exported images were deleted: redo it
    return row


def _rank_key(row: dict[str, Any]) -> tuple[float, float, float, str]:
    """Smallest p-value first; ties by the largest region peak (what decides the flag from model 1.6.0; absent
    before), then by the highest subject score (bundles without p-values: by score alone), then by id."""
    p, peak = row.get("p_value"), row.get("largest_region_peak")
    peak_key = -float(peak) if peak not in (None, "") else 0.0
    return (float(p) if p is not None else 2.0, peak_key, -float(row["subject_score"]), row["case_id"])


def rank_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Finished cases by p-value, smallest first, ties by region peak and subject score; failed cases after them."""
    done = sorted((r for r in rows if r.get("subject_score") is not None), key=_rank_key)
    failed = sorted((r for r in rows if r.get("subject_score") is None), key=lambda r: r["case_id"])
    ranked = []
    for number, row in enumerate(done + failed, start=1):
        ranked.append({**row, "rank": number if row.get("subject_score") is not None else ""})
    return ranked


def write_scores(rows: list[dict[str, Any]], out: Path, stem: str = "scores") -> Path:
    """``<stem>.csv`` (ranked, one row per case) and ``<stem>.json`` with the same rows."""
    ranked = rank_rows(rows)
    buffer = _io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=SCORE_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in ranked:
        writer.writerow({k: _cell(row.get(k)) for k in SCORE_COLUMNS})
    table = out / f"{stem}.csv"
    with atomic_path(table) as tmp:
        tmp.write_text(buffer.getvalue())
    write_json({"columns": list(SCORE_COLUMNS), "rows": ranked}, out / f"{stem}.json")
    return table


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list):
        return "; ".join(str(v) for v in value)
    return value
