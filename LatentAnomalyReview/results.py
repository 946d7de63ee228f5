"""What a results folder holds: one `detect` output folder or a `batch` folder with ``scores.csv``.

Checked before the server starts, so a missing or malformed folder ends with one ``error:`` line
(:class:`LatentAnomalyLib.errors.InputError`). No Slicer, no trame: plain files.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from LatentAnomalyLib.errors import InputError
from LatentAnomalyLib.io.text_files import MAX_JSON_BYTES, read_text_limited

IMAGE_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".mha")
P_VALUE_COLUMNS = ("subject_p_value", "p_value", "pvalue")
REVIEWED_STEM = "labelmap_reviewed"


@dataclass
class ResultCase:
    """One row of a results folder (not the library's ``case.Case``); ``folder`` is None when its images were not exported."""

    case_id: str
    subject_score: float | None
    flagged: bool
    p_value: float | None = None
    folder: Path | None = None
    scan_path: str = ""
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def viewable(self) -> bool:
        return self.folder is not None

    def row(self) -> dict[str, Any]:
        """The case as the page's list shows it (JSON-friendly)."""
        return {
            "case_id": self.case_id,
            "score": "" if self.subject_score is None else f"{self.subject_score:.2f}",
            "p_value": "" if self.p_value is None else f"{self.p_value:.3g}",
            "flagged": "yes" if self.flagged else "no",
            "viewable": self.viewable,
            "note": self.note,
        }


@dataclass
class Results:
    """A results folder: its kind ("detect" or "batch"), its cases in ``scores.csv`` order.

    ``has_p_value``: some case has a p-value (a model without conformal calibration leaves the column empty).
    """

    root: Path
    kind: str
    cases: list[ResultCase]
    has_p_value: bool = False

    def first_viewable(self) -> int:
        return next(i for i, case in enumerate(self.cases) if case.viewable)


def find_image(folder: Path, stem: str) -> Path | None:
    """``<folder>/<stem>.<ext>`` for the first image suffix that exists."""
    for suffix in IMAGE_SUFFIXES:
        path = folder / f"{stem}{suffix}"
        if path.is_file():
            return path
    return None


def read_summary(folder: Path) -> dict[str, Any]:
    """The ``summary.json`` of a case folder, checked for what the page needs."""
    path = folder / "summary.json"
    try:
        if not path.is_file():
            raise FileNotFoundError(path)
        summary = json.loads(read_text_limited(path, MAX_JSON_BYTES, "summary"))
    except FileNotFoundError:
        raise InputError(f"{folder}: not a detect output folder (no summary.json)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputError(f"{path}: unreadable summary ({error})") from None
    if not isinstance(summary, dict) or not isinstance(summary.get("voxel_threshold"), (int, float)):
        raise InputError(f"{path}: malformed summary (no numeric voxel_threshold)")
    for stem in ("heatmap", "labelmap"):
        if find_image(folder, stem) is None:
            raise InputError(f"{folder}: no {stem} image ({stem}.nii.gz, .nii, .nrrd or .mha)")
    return summary


def resolve_scan(recorded: str, root: Path) -> Path | None:
    """The scan a result was computed from: as recorded, else relative to the results folder or its parents."""
    if not recorded:
        return None
    path = Path(recorded)
    candidates = [path] if path.is_absolute() else [Path.cwd() / path, root / path, *(p / path for p in root.parents)]
    return next((c.resolve() for c in candidates if c.exists()), None)


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except ValueError:
        return None


def _detect_case(root: Path) -> Results:
    summary = read_summary(root)
    recorded = str((summary.get("input") or {}).get("path", ""))
    case = ResultCase(
        case_id=Path(recorded).name.split(".")[0] if recorded else root.name,
        subject_score=_float(str(summary.get("subject_score", ""))),
        flagged=bool(summary.get("subject_flagged")),
        p_value=_float(str(summary.get("subject_p_value", ""))),
        folder=root,
        scan_path=recorded,
    )
    return Results(root, "detect", [case], has_p_value=case.p_value is not None)


def _batch_cases(root: Path) -> Results:
    table = root / "scores.csv"
    try:
        with table.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            columns = reader.fieldnames or []
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise InputError(f"{table}: unreadable ({error})") from None
    missing = [c for c in ("case_id", "subject_score", "flagged") if c not in columns]
    if missing:
        raise InputError(f"{table}: malformed scores table (no {', '.join(missing)} column)")
    p_column = next((c for c in P_VALUE_COLUMNS if c in columns), None)
    cases = []
    for row in rows:
        case_id = row["case_id"]
        folder = root / case_id
        note = ""
        if not case_id or Path(case_id).name != case_id:
            raise InputError(f"{table}: malformed case_id {case_id!r}")
        if (folder / "summary.json").is_file():
            read_summary(folder)  # a broken case folder is reported now, not when it is clicked
        else:
            folder, note = None, row.get("error") or "images not exported"
        cases.append(
            ResultCase(
                case_id=case_id,
                subject_score=_float(row.get("subject_score")),
                flagged=str(row.get("flagged", "")).strip().lower() in ("true", "yes", "1"),
                p_value=_float(row.get(p_column)) if p_column else None,
                folder=folder,
                scan_path=row.get("path", ""),
                note=note,
            )
        )
    if not cases:
        raise InputError(f"{table}: no cases")
    if not any(c.viewable for c in cases):
        raise InputError(f"{root}: no case has exported images (run batch with --export flagged or all)")
    return Results(root, "batch", cases, has_p_value=any(c.p_value is not None for c in cases))


def load_results(path: str | Path) -> Results:
    """Read a `detect` or `batch` output folder; :class:`InputError` with one line when it is neither."""
    root = Path(path)
    if not root.exists():
        raise InputError(f"{root}: no such results folder")
    if not root.is_dir():
        raise InputError(f"{root}: not a folder (give a detect or batch output folder)")
    root = root.resolve()
    if (root / "scores.csv").is_file():
        return _batch_cases(root)
    if (root / "summary.json").is_file():
        return _detect_case(root)
    raise InputError(f"{root}: not a detect or batch output folder (no summary.json or scores.csv)")
