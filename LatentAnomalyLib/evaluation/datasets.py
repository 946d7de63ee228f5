"""Where the shared research data lives and how its cases are named.

Only training, evaluation and benchmarks use this; detection never does. The data root comes
from ``LATENT_ANOMALY_DATA`` (default ``../shared/data`` relative to the repository).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..case import Case

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SPLIT = REPO_ROOT / "splits" / "ixi_t1_split.json"
BRATS_SPLIT = REPO_ROOT / "splits" / "brats_t1_split.json"  # validation half (choices) and report half (figures)


def data_root() -> Path:
    """The shared data folder (may not exist: callers skip or fail with a clear message)."""
    return Path(os.environ.get("LATENT_ANOMALY_DATA", REPO_ROOT.parent / "shared" / "data")).resolve()


def participant_ages(path: Path) -> dict[str, float]:
    """Ages in years by scan id from a participants table (``ixi-t1/participants.csv``: columns MRID and Age; rows
    without an age are left out); an empty dict when the file does not exist. A cell that is not a number is a
    ``ValueError`` naming its row."""
    import csv

    if not Path(path).is_file():
        return {}
    ages = {}
    with open(path, newline="") as handle:
        for line, row in enumerate(csv.DictReader(handle), start=2):
            text = (row.get("Age") or "").strip()
            if not text:
                continue
            try:
                ages[row["MRID"]] = float(text)
            except ValueError:
                raise ValueError(f"{path} row {line}: Age {text!r} is not a number") from None
    return ages


def ixi_split(split_file: Path = DEFAULT_SPLIT) -> dict[str, list[str]]:
    data = json.loads(Path(split_file).read_text())
    return {key: list(data[key]) for key in ("train", "val", "test")}


def ixi_cases(part: str, root: Path | None = None, split_file: Path = DEFAULT_SPLIT) -> list[Case]:
    """IXI T1 scans (with skull) of one split part, with their DLMUSE brain labels."""
    root = root or data_root()
    return [
        Case(
            case_id=subject,
            images={"t1": root / "ixi-t1" / "t1" / f"{subject}_T1.nii.gz"},
            brain_mask=root / "ixi-t1" / "dlmuse" / f"{subject}_T1_DLMUSE.nii.gz",
            source="ixi",
            healthy=True,
        )
        for subject in ixi_split(split_file)[part]
    ]


def brats_cases(root: Path | None = None) -> list[Case]:
    """BraTS 2018 cases: FLAIR, T1, T2 and the tumour labels (whole tumour = label > 0)."""
    root = root or data_root()
    cases = []
    for folder in sorted(p for p in (root / "brats2018").glob("Brats18_*") if p.is_dir()):
        name = folder.name
        cases.append(
            Case(
                case_id=name,
                images={seq: folder / f"{name}_{seq}.nii.gz" for seq in ("t1", "t2", "flair")},
                label=folder / f"{name}_seg.nii.gz",
                source="brats",
            )
        )
    return cases


def brats_half(half: str, root: Path | None = None, split_file: Path = BRATS_SPLIT) -> list[Case]:
    """The BraTS cases of one half of the fixed split (``validation`` or ``report``), in folder order."""
    members = set(json.loads(Path(split_file).read_text())[half])
    return [c for c in brats_cases(root) if c.case_id in members]


def mslub_cases(root: Path | None = None) -> list[Case]:
    """MSLUB multiple-sclerosis patients with their consensus lesion masks."""
    root = root or data_root()
    cases = []
    for folder in sorted(p for p in (root / "mslub").glob("patient*") if p.is_dir()):
        cases.append(
            Case(
                case_id=f"mslub-{folder.name}",
                images={seq.lower(): folder / f"{seq}.nii.gz" for seq in ("T1", "T2", "FLAIR")},
                label=folder / "GOLD_STANDARD.nii.gz",
                source="mslub",
            )
        )
    return cases


def other_site_cases(root: Path | None = None) -> list[Case]:
    """Healthy skull-stripped T1 scans from scanners other than IXI's."""
    root = root or data_root()
    return [
        Case(case_id=p.name.replace("_t1_brain.nii.gz", ""), images={"t1": p}, source="other-sites", healthy=True)
        for p in sorted((root / "other-sites").glob("*.nii.gz"))
    ]


def templates_dir(root: Path | None = None) -> Path:
    return (root or data_root()) / "templates"


IMAGE_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".mha", ".mhd")


def _case_id(path: Path) -> str:
    name = path.name
    for suffix in IMAGE_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def cohort_cases(source: Path, sequence: str = "T1") -> list[Case]:
    """A user's own healthy scans: every image file in a folder (sorted by name), or the rows of a CSV.

    A CSV needs a ``path`` column (relative paths are relative to the CSV's folder) and may have an
    ``id`` column (default: the file name without its extension). Raises ``ValueError`` with a
    one-line reason when the source is missing, empty, or names a file that does not exist or an
    id twice. The image key of each case is the sequence in lower case.
    """
    import csv

    source = Path(source)
    key = sequence.lower()
    if source.is_dir():
        files = sorted(p for p in source.iterdir() if p.is_file() and p.name.lower().endswith(IMAGE_SUFFIXES))
        rows = [(_case_id(p), p) for p in files]
    elif source.is_file() and source.suffix.lower() == ".csv":
        with open(source, newline="") as handle:
            reader = csv.DictReader(handle)
            if not reader.fieldnames or "path" not in reader.fieldnames:
                raise ValueError(f"{source}: the CSV needs a 'path' column")
            rows = []
            for row in reader:
                path = Path(row["path"])
                path = path if path.is_absolute() else source.parent / path
                rows.append(((row.get("id") or "").strip() or _case_id(path), path))
    else:
        raise ValueError(f"{source}: not a folder of scans or a .csv file")
    if not rows:
        raise ValueError(f"{source}: no scans found (looked for {', '.join(IMAGE_SUFFIXES)})")
    seen: set[str] = set()
    for case_id, path in rows:
        if not path.is_file():
            raise ValueError(f"{source}: scan {path} does not exist")
        if case_id in seen:
            raise ValueError(f"{source}: case id {case_id!r} appears twice")
        seen.add(case_id)
    return [Case(case_id=i, images={key: p}, source="cohort", healthy=True) for i, p in rows]


def make_split(case_ids: list[str], val_fraction: float, seed: int) -> dict[str, list[str]]:
    """A seeded random train/validation split (at least one validation and two training scans)."""
    import numpy as np

    if len(case_ids) < 3:
        raise ValueError(f"training needs at least 3 scans (2 train, 1 validation), got {len(case_ids)}")
    n_val = min(len(case_ids) - 2, max(1, int(round(val_fraction * len(case_ids)))))
    order = np.random.default_rng(seed).permutation(len(case_ids))
    val = sorted(case_ids[i] for i in order[:n_val])
    return {"train": sorted(set(case_ids) - set(val)), "val": val}
