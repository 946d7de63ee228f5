"""Evaluation cases: listed from a cases CSV or a BraTS-like folder, and read for evaluation.

Each case's evaluation brain mask is fixed once here (the case's own brain mask, else the brain mask
of its reference scan given by the caller), independently of the method evaluated on it.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from ..case import Case
from ..errors import InputError
from ..io.read import read_image
from ..io.text_files import MAX_LIST_BYTES, read_text_limited


@dataclass
class LoadedCase:
    """A case read for evaluation: its reference scan, the evaluation brain mask and the ground truth (> 0)."""

    case: Case
    reference: sitk.Image
    brain: np.ndarray
    label: np.ndarray | None


def _truthy(text: str | None) -> bool:
    return str(text or "").strip().lower() in ("1", "true", "yes", "healthy")


def read_cases_csv(path: str | Path) -> list[Case]:
    """Cases from a CSV: case_id, sequence columns (t1, t2, flair, ...), label, brain_mask, healthy."""
    source = Path(path)
    if not source.is_file():
        raise InputError(f"{source}: no such cases file")
    base = source.parent
    rows = list(csv.DictReader(read_text_limited(source, MAX_LIST_BYTES, "cases file").splitlines()))
    if not rows or "case_id" not in rows[0]:
        raise InputError(f"{source}: needs a header with a case_id column and one column per sequence")
    reserved = {"case_id", "label", "brain_mask", "healthy"}
    cases = []
    for row in rows:

        def resolve(value: str | None) -> Path | None:
            return (base / value).resolve() if value else None

        images = {k: resolve(v) for k, v in row.items() if k not in reserved and v}
        if not images:
            raise InputError(f"{source}: case {row['case_id']} lists no image")
        label, brain_mask = resolve(row.get("label")), resolve(row.get("brain_mask"))
        cases.append(Case(row["case_id"], images, label, brain_mask, _truthy(row.get("healthy")), str(source)))
    return cases


def brats_folder_cases(folder: str | Path) -> list[Case]:
    root = Path(folder)
    if not root.is_dir():
        raise InputError(f"{root}: no such folder")
    cases = []
    for case_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        name = case_dir.name
        images = {
            seq: case_dir / f"{name}_{seq}.nii.gz"
            for seq in ("t1", "t2", "flair")
            if (case_dir / f"{name}_{seq}.nii.gz").exists()
        }
        if images:
            seg = case_dir / f"{name}_seg.nii.gz"
            cases.append(Case(name, images, seg if seg.exists() else None, source=str(root)))
    if not cases:
        raise InputError(f"{root}: no case folders laid out like BraTS (<case>/<case>_t1.nii.gz)")
    return cases


def load_case(case: Case, reference_sequence: str, brain_from: Any) -> LoadedCase:
    """Read the reference scan, the evaluation brain mask and the ground truth (label > 0)."""
    sequence = reference_sequence if reference_sequence in case.images else next(iter(case.images))
    reference = read_image(case.images[sequence])
    if case.brain_mask is not None:
        brain = sitk.GetArrayFromImage(sitk.ReadImage(str(case.brain_mask))) > 0
    else:
        brain = brain_from(reference)
    label = None
    if case.label is not None:
        label = sitk.GetArrayFromImage(sitk.ReadImage(str(case.label))) > 0
        if label.shape != brain.shape:
            raise InputError(
                f"{case.case_id}: ground truth shape {label.shape[::-1]} differs from the scan's {brain.shape[::-1]}"
            )
    return LoadedCase(case, reference, brain, label)
