"""The headers of a DICOM series as a DICOM SEG needs them: read, checked, and completed where a value can be derived.

Real-world series lack attributes that highdicom copies into a SEG: anonymisation and conversion tools drop Slice
Thickness, empty the patient and study attributes, or leave out the Modality. What can be derived honestly is filled
in here, on the in-memory copies only (the input files are never changed), and each derivation is said in one line
(it becomes a ``summary.json`` warning): the slice thickness from the spacing of the slice positions, the type 2
patient and study attributes as empty values (what the standard allows when they are unknown). What cannot be derived
(positions, orientation, pixel spacing, the Frame of Reference that ties a SEG to its images) makes the SEG impossible:
:class:`SegUnavailable` says why, before any detection runs.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from .library_messages import library_messages

PLACEMENT = ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "Rows", "Columns")
IDENTITY = ("SOPClassUID", "SOPInstanceUID", "SeriesInstanceUID", "StudyInstanceUID", "FrameOfReferenceUID")
EMPTY_IF_MISSING = (
    "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "AccessionNumber", "StudyID", "StudyDate",
    "StudyTime", "ReferringPhysicianName",
)  # fmt: skip


class SegUnavailable(InputError):
    """The series cannot carry a DICOM SEG (the detection itself is still possible); the message says why."""


@dataclass
class SegSources:
    """The completed headers of a series (in slice order of the files given), what was derived, and library notes."""

    datasets: list[Any]
    derived: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _read(files: Sequence[str | os.PathLike[str]]) -> list[Any]:
    import pydicom

    datasets = []
    for name in files:
        try:
            dataset = pydicom.dcmread(name, stop_before_pixels=True)
        except (OSError, pydicom.errors.InvalidDicomError) as error:
            raise SegUnavailable(f"{Path(name).name}: not a readable DICOM file ({error})") from None
        if int(getattr(dataset, "NumberOfFrames", 1) or 1) > 1:
            raise SegUnavailable("multi-frame DICOM images are not supported for SEG export")
        datasets.append(dataset)
    return datasets


def _check(datasets: Sequence[Any]) -> None:
    for dataset in datasets:
        for keyword in (*PLACEMENT, *IDENTITY):
            if not str(dataset.get(keyword, "") or "").strip():
                reason = (
                    "no Frame of Reference UID ties a segmentation to it"
                    if keyword == "FrameOfReferenceUID"
                    else (f"an image has no {keyword}, so a segmentation cannot be placed on it")
                )
                raise SegUnavailable(f"the series has {reason}")
    for keyword in ("SeriesInstanceUID", "StudyInstanceUID", "FrameOfReferenceUID"):
        if len({str(d.get(keyword)) for d in datasets}) != 1:
            raise SegUnavailable(f"the images of the series differ in {keyword}")


def slice_step_mm(datasets: Sequence[Any]) -> float | None:
    """The distance between neighbouring slice positions along the slice normal (median), or None for one slice."""
    orientation = np.array([float(v) for v in datasets[0].ImageOrientationPatient])
    normal = np.cross(orientation[:3], orientation[3:])
    along = np.sort([float(np.dot([float(v) for v in d.ImagePositionPatient], normal)) for d in datasets])
    return float(np.median(np.diff(along))) if len(along) > 1 else None


def _complete(datasets: Sequence[Any]) -> list[str]:
    derived = []
    thickness = [d for d in datasets if not str(d.get("SliceThickness", "") or "").strip()]
    if thickness:
        step = slice_step_mm(datasets)
        if step is None or step <= 0:
            raise SegUnavailable("the series has no Slice Thickness and a single slice position to derive it from")
        for dataset in thickness:
            dataset.SliceThickness = f"{step:.6g}"
        derived.append(f"Slice Thickness {step:.6g} mm, from the spacing of the slice positions")
    empty = sorted({k for d in datasets for k in EMPTY_IF_MISSING if k not in d})
    for dataset in datasets:
        for keyword in EMPTY_IF_MISSING:
            if keyword not in dataset:
                setattr(dataset, keyword, "")
    if empty:
        derived.append(f"{', '.join(empty)} left empty (absent from the series)")
    sexes = {str(d.get("PatientSex", "") or "") for d in datasets} - {"M", "F", "O", ""}
    if sexes:  # "Female", "male", "U": not one of the values the standard allows (highdicom refuses them)
        for dataset in datasets:
            value = str(dataset.get("PatientSex", "") or "").strip().upper()
            dataset.PatientSex = value[:1] if value[:1] in ("M", "F") else "O" if value == "O" else ""
        derived.append(f"Patient's Sex {', '.join(sorted(sexes))} written as {datasets[0].PatientSex or 'empty'}")
    if any(not str(d.get("Modality", "") or "").strip() for d in datasets):
        for dataset in datasets:
            dataset.Modality = "MR"
        derived.append("Modality MR (absent from the series)")
    return derived


def seg_sources(files: Sequence[str | os.PathLike[str]]) -> SegSources:
    """Read, check and complete the headers of ``files`` (one series); :class:`SegUnavailable` when no SEG can be made.

    Also builds a SEG of one flagged voxel in memory on the first and last image (the attributes of every image are
    checked one by one before), so that whatever highdicom would refuse is found now, before a detection.
    """
    with library_messages() as notes:
        datasets = _read(files)
        if not datasets:
            raise SegUnavailable("the series holds no images")
        _check(datasets)
        derived = _complete(datasets)
        ends = [datasets[0], datasets[-1]] if len(datasets) > 1 else datasets  # every image was checked above;
        trial = np.zeros((len(ends), int(datasets[0].Rows), int(datasets[0].Columns)), np.uint8)  # 0.05 s, not 1.5
        trial[0, 0, 0] = 1
        try:
            build_segmentation(ends, trial, "check", "0")
        except (ValueError, TypeError, AttributeError, KeyError) as error:
            raise SegUnavailable(str(error).splitlines()[0] if str(error) else type(error).__name__) from None
    return SegSources(datasets, derived, list(notes))


def build_segmentation(
    datasets: Sequence[Any],
    frames: np.ndarray,
    model_name: str,
    model_version: str,
    parameters: dict[str, str] | None = None,
    series_number: int | None = None,
    series_instance_uid: str | None = None,
    sop_instance_uid: str | None = None,
) -> Any:
    """A BINARY highdicom Segmentation with one segment "Anomaly", frame i derived from ``datasets[i]``."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    from .. import __version__

    algorithm = hd.AlgorithmIdentificationSequence(
        name=model_name,
        family=codes.cid7162.ArtificialIntelligence,
        version=str(model_version),
        source="LatentAnomaly",
        parameters=parameters or None,
    )
    segment = hd.seg.SegmentDescription(
        segment_number=1,
        segment_label="Anomaly",
        segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
        segmented_property_type=codes.SCT.Lesion,
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
        algorithm_identification=algorithm,
        anatomic_regions=[codes.SCT.Brain],
    )
    if series_number is None:
        series_number = 1000 + int(getattr(datasets[0], "SeriesNumber", 0) or 0)
    return hd.seg.Segmentation(
        source_images=list(datasets),
        pixel_array=frames,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=[segment],
        series_instance_uid=series_instance_uid or hd.UID(),
        series_number=series_number,
        sop_instance_uid=sop_instance_uid or hd.UID(),
        instance_number=1,
        manufacturer="LatentAnomaly",
        manufacturer_model_name=model_name,
        software_versions=f"latent-anomaly {__version__}",
        device_serial_number="none",
        content_label="ANOMALY",
        content_description=f"Anomalies flagged by {model_name} {model_version}",
    )
