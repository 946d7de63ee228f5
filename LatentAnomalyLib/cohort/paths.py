"""The one rule for case ids and the paths a batch run writes under ``--out``.

A case id names three things: the exported folder ``<out>/<id>``, its staging folder
``<out>/.partial/<id>`` and its record ``<out>/.records/<id>.json``; the batch removes and replaces
the first two. An id taken from a CSV is user text, so it could name ``../../elsewhere`` or an
absolute path: every writer gets its paths from here, and an id that is not a plain folder name is
refused before anything is written (never silently renamed, which could merge two cases).
"""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import InputError

PARTIAL = ".partial"
RECORDS = ".records"
CASE_ID_PATTERN = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}")
RESERVED = re.compile(r"(scores(-shard-\d+-of-\d+)?\.(csv|json))", re.IGNORECASE)

__all__ = ["PARTIAL", "RECORDS", "case_folder", "check_case_id", "record_path", "staging_folder"]


def check_case_id(case_id: str, where: str = "") -> str:
    """Return ``case_id`` if it is a plain folder name; raise ``InputError`` saying why not otherwise.

    Allowed: letters, digits, ``.``, ``_`` and ``-``, at most 128 characters, not starting with a
    dot (no ``..``, no hidden folders), no separators, and not the name of the cohort table.
    """
    origin = f"{where}: " if where else ""
    if not CASE_ID_PATTERN.fullmatch(case_id) or RESERVED.fullmatch(case_id):
        raise InputError(
            f"{origin}case_id {case_id!r} is not a plain folder name (it would escape or clash inside --out); "
            "use letters, digits, '.', '_' and '-' only, not starting with '.'"
        )
    return case_id


def _inside(out: Path, path: Path) -> Path:
    """``path`` if it lies inside ``out`` once both are resolved; a safety net behind ``check_case_id``."""
    from ..io.path_checks import resolved as follow

    root = follow(out)
    target = follow(path)
    if target == root or root not in target.parents:
        raise InputError(f"{path}: would be written outside the output folder {out}; refusing")
    return path


def case_folder(out: Path, case_id: str) -> Path:
    """``<out>/<case_id>``: where a case's exported heatmap, label map and summary go."""
    return _inside(out, out / check_case_id(case_id))


def staging_folder(out: Path, case_id: str) -> Path:
    """``<out>/.partial/<case_id>``: where a case is written before it is moved into place."""
    return _inside(out, out / PARTIAL / check_case_id(case_id))


def record_path(out: Path, case_id: str) -> Path:
    """``<out>/.records/<case_id>.json``: the result row of a finished (or failed) case."""
    return _inside(out, out / RECORDS / f"{check_case_id(case_id)}.json")
