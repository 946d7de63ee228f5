"""Which scans a batch run covers: a folder of scans, a CSV or text list, or paths given one by one.

Kept apart from running detection so that the list of cases (and their ids, which name output
folders and resume records) is decided once, the same way on every rank and every restart.
"""

from __future__ import annotations

import csv
import hashlib
import re
import unicodedata
from pathlib import Path

from ..case import Case
from ..errors import InputError
from ..io.read import image_suffix
from ..io.text_files import MAX_LIST_BYTES, read_text_limited
from ..score.age_bands import check_age
from .paths import check_case_id

LIST_SUFFIXES = (".csv", ".tsv", ".txt", ".lst")


SEQUENCE = "t1"  # the image key of a batch case: batch detects with the T1 model


def batch_case(case_id: str, path: str, source: str = "", age: float | None = None) -> Case:
    """A batch case: one scan (file or DICOM folder) kept as the text given, so records compare the same path."""
    return Case(case_id, {SEQUENCE: path}, source=source, age=age)


def _age(text: str, where: str) -> float | None:
    """The optional 'age' cell of a list row: empty for unknown, else years from 0 to 130."""
    if not text:
        return None
    try:
        return check_age(float(text))
    except ValueError:
        raise InputError(f"{where}: age must be a number of years from 0 to 130, got {text!r}") from None


def case_id_for(path: str) -> str:
    """A folder-safe id from a scan path (file name without image suffix, no leading dot).

    ASCII names keep their readable id (other characters become ``_``). A name with other characters (Chinese,
    accents) keeps what it has in ASCII (accents dropped: ``é`` -> ``e``) followed by 8 hex digits of the SHA-256 of
    its NFC form: distinct names get distinct ids, and the same name the same id on every run and file system.
    """
    p = Path(path.rstrip("/"))
    suffix = image_suffix(p)
    name = p.name[: -len(suffix)] if suffix else p.name
    if name.isascii():
        return re.sub(r"[^A-Za-z0-9._-]+", "_", name).lstrip(".")[:128] or "case"
    text = unicodedata.normalize("NFC", name)
    digest = hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:8]
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", folded).strip("._-")[:119]
    return f"{base}-{digest}" if base else f"case-{digest}"


def read_list(path: str | Path) -> list[Case]:
    """Cases from a CSV with a 'path' column (optional 'case_id' and 'age', in years: age-matched p-values) or a
    plain list of paths, one a line.

    Relative paths are taken relative to the list's folder when they exist there, so a list can
    travel with its scans. A given case_id must be a plain folder name (see :mod:`.paths`): one
    that would leave the output folder (``..``, absolute, separators) is refused, naming its line.
    """
    source = Path(path)
    if not source.is_file():
        raise InputError(f"{source}: no such list file")
    text = read_text_limited(source, MAX_LIST_BYTES, "case list", "split it into several lists (batch takes several)")
    lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    if not lines:
        raise InputError(f"{source}: the list is empty")
    delimiter = "\t" if source.suffix.lower() == ".tsv" else ","
    header = [c.strip().lower() for c in lines[0].split(delimiter)]
    if "path" in header:
        rows = list(csv.DictReader(lines, delimiter=delimiter))
        pairs = [
            ((row.get("case_id") or "").strip(), (row.get("path") or "").strip(), (row.get("age") or "").strip())
            for row in ({k.strip().lower(): v for k, v in r.items() if k} for r in rows)
        ]
    else:
        pairs = [("", line.strip(), "") for line in lines]
    cases = []
    for line, (case_id, raw, age) in enumerate(pairs, start=2 if "path" in header else 1):
        if case_id:
            check_case_id(case_id, f"{source} row {line}")
        if not raw:
            continue
        candidate = Path(raw)
        if not candidate.is_absolute() and (source.parent / candidate).exists():
            candidate = source.parent / candidate
        cases.append(batch_case(case_id or case_id_for(raw), str(candidate), str(source), _age(age, f"{source} row {line}")))
    return cases


def scan_folder(folder: Path) -> tuple[list[Case], list[str]]:
    """Cases in a folder: every image file, and every sub-folder holding no image files (a DICOM series).

    Returns the cases and notes about what was skipped (other files, sub-folders of NIfTI files).
    """
    cases, skipped_files, skipped_dirs = [], 0, 0
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            files = [p for p in entry.iterdir() if p.is_file() and not p.name.startswith(".")]
            if files and not any(image_suffix(p) for p in files):
                cases.append(batch_case(case_id_for(str(entry)), str(entry), str(folder)))
            else:
                skipped_dirs += 1
        elif image_suffix(entry):
            cases.append(batch_case(case_id_for(str(entry)), str(entry), str(folder)))
        else:
            skipped_files += 1
    notes = []
    if skipped_files:
        notes.append(f"{folder}: skipped {skipped_files} file(s) that are not scans")
    if skipped_dirs:
        notes.append(
            f"{folder}: skipped {skipped_dirs} sub-folder(s) that are not DICOM series; list their scans in a CSV"
        )
    return cases, notes


def _looks_like_dicom_series(folder: Path) -> bool:
    files = [p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")]
    return bool(files) and not any(image_suffix(p) for p in files) and not any(p.is_dir() for p in folder.iterdir())


def discover(inputs: list[str], listing: str | None = None) -> tuple[list[Case], list[str]]:
    """All cases named by the command line, in order, with unique ids; and notes for the user."""
    cases: list[Case] = []
    notes: list[str] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir() and not _looks_like_dicom_series(path):
            found, skipped = scan_folder(path)
            if not found:
                raise InputError(f"{path}: holds no scans (NIfTI, NRRD, MHA files or DICOM series sub-folders)")
            cases += found
            notes += skipped
        elif path.is_file() and not image_suffix(path) and path.suffix.lower() in LIST_SUFFIXES:
            cases += read_list(path)
        else:  # a scan or a DICOM folder; a missing one is recorded as failed, not fatal
            cases.append(batch_case(case_id_for(item), item))
    if listing:
        cases += read_list(listing)
    if not cases:
        raise InputError("no scans given: pass a folder, a CSV of paths, or scan paths")
    for case in cases:
        check_case_id(case.case_id, case.path)
    _check_unique(cases)
    return cases, notes


def _check_unique(cases: list[Case]) -> None:
    """Refuse two cases with one id, naming the scans and where their ids came from (a list's case_id column, or
    the file names), since each cause has its own fix."""
    by_id: dict[str, list[Case]] = {}
    for case in cases:
        by_id.setdefault(case.case_id, []).append(case)
    clashes = {cid: group for cid, group in by_id.items() if len(group) > 1}
    if not clashes:
        return
    cid, group = next(iter(clashes.items()))
    paths = ", ".join(c.path for c in group[:3]) + (", ..." if len(group) > 3 else "")
    more = f" ({len(clashes) - 1} more id(s) clash too)" if len(clashes) > 1 else ""
    given = [c for c in group if c.case_id != case_id_for(c.path)]
    listed = [c for c in group if Path(c.source).suffix.lower() in LIST_SUFFIXES and c not in given]
    if given:
        fix = f"the case_id column of {given[0].source} repeats it: make each case_id unique"
    elif listed:
        fix = (
            f"their ids come from the file names because {listed[0].source} gives them no case_id (no such column, "
            "or empty cells): give each a distinct case_id there"
        )
    else:
        fix = (
            "the ids come from the file names (suffix removed, characters other than letters, digits, '.', '_' and '-' "
            "replaced): rename the files, or list them in a CSV with 'path' and distinct 'case_id' columns"
        )
    raise InputError(f"case ids are not unique: {cid!r} is the id of {len(group)} scans ({paths}){more}; {fix}")
