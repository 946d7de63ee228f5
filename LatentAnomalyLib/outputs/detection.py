"""One scan in, three files out: the file-level wrapper around :class:`Detector` used by the CLI."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..io.read import geometry, read_image
from ..io.write import write_image, write_json
from ..preprocess.input_kind import check_input_kind, explain_failure
from ..progress import ProgressDisplay

OUTPUT_NAMES = ("heatmap", "labelmap")
DICOM_SEG_NAME = "labelmap.seg.dcm"  # with --dicom-seg on a DICOM series input
OOD_SCORE_FACTOR = 3.0  # subject score this many times its threshold: a large lesion or an input unlike training
BRAIN_ML_RANGE = (600.0, 2500.0)  # adult brain volumes lie well inside; outside, the mask or the scan is wrong


def output_paths(out_dir: str | Path, image_format: str = "nii.gz", dicom_seg: bool = False) -> dict[str, Path]:
    out = Path(out_dir)
    paths = {name: out / f"{name}.{image_format}" for name in OUTPUT_NAMES} | {"summary": out / "summary.json"}
    return paths | {"dicom_seg": out / DICOM_SEG_NAME} if dicom_seg else paths


def out_of_distribution_warnings(summary: dict[str, Any]) -> list[str]:
    """Warnings for results that say more about the input than about anomalies (e.g. not a head scan)."""
    warnings = []
    score = summary.get("subject_score")
    threshold = summary.get("subject_score_threshold", summary.get("subject_threshold"))  # 1.6.0: the score's own
    if score is not None and threshold and threshold > 0 and score > OOD_SCORE_FACTOR * threshold:
        warnings.append(
            f"subject score {score:.2f} is more than {OOD_SCORE_FACTOR:g}x the threshold ({threshold:.2f}): "
            "either a large abnormality or a scan unlike the healthy training scans (it may not be a "
            "T1-weighted brain MRI); check the input before trusting the heatmap"
        )
    brain = summary.get("brain_volume_ml")
    low, high = BRAIN_ML_RANGE
    if brain is not None and not low <= brain <= high:
        warnings.append(
            f"brain mask volume {brain:.0f} mL is implausible (expected {low:.0f}-{high:.0f} mL): "
            "the scan may not be a head, or its voxel size is wrong"
        )
    return warnings


def check_scorer(model: Any, scorer: str | None) -> None:
    """Refuse a ``--scorer`` the bundle does not hold, naming the ones it has."""
    if scorer is not None and scorer not in model.scorers:
        raise InputError(f"--scorer {scorer!r} is not in model {model.name}; it has: {', '.join(sorted(model.scorers))}")


def thick_slice_warnings(spacing: tuple[float, ...], grid_mm: float) -> list[str]:
    """A warning when the scan's voxels are coarser than the model grid along some axis (thick slices)."""
    thickest = max(float(s) for s in spacing)
    if thickest <= grid_mm * 1.05:
        return []
    return [
        f"voxel size {'x'.join(f'{s:g}' for s in spacing)} mm: slices are {thickest:g} mm thick, coarser than the "
        f"model's {grid_mm:g} mm grid; lesions thinner than about {thickest:g} mm may be missed and the heatmap "
        "is blurred across slices"
    ]


def check_seg_before_detection(input_path: str | Path, series: str | None) -> tuple[Any, list[str]]:
    """The completed SEG sources of a DICOM series input and the warnings to give (what was derived), or None and
    the one warning saying why no SEG can be made. Refuses (``InputError``) a file input or a missing highdicom."""
    from .dicom_seg import check_dicom_seg_input, seg_source_files
    from .dicom_sources import SegUnavailable, seg_sources

    check_dicom_seg_input(input_path)
    files = seg_source_files(input_path, series)
    try:
        sources = seg_sources(files)
    except SegUnavailable as error:
        return None, [f"no DICOM SEG was written: {error}; the other outputs are complete"]
    return sources, [f"DICOM SEG: {item}" for item in sources.derived]


def write_seg(result: Any, input_path: str | Path, path: Path, model: Any, sources: Any, uids: Any) -> list[str]:
    """Write the SEG of ``result``'s label map; a failure here is one warning, never a lost detection."""
    from .dicom_seg import write_dicom_seg
    from .dicom_sources import SegUnavailable

    used = result.summary["model"]
    parameters = {"scorer": used["scorer"], "voxel_threshold": result.summary["voxel_threshold"]}
    series_uid, sop_uid = uids or (None, None)
    try:
        write_dicom_seg(
            result.labelmap, input_path, path, model_name=model.name, model_version=model.version,
            parameters=parameters, sources=sources, series_instance_uid=series_uid, sop_instance_uid=sop_uid,
        )  # fmt: skip
    except SegUnavailable as error:
        return [f"no DICOM SEG was written: {error}; the other outputs are complete"]
    return []


RESULT_NAMES = {f"{n}.{fmt}" for n in OUTPUT_NAMES for fmt in ("nii.gz", "nrrd", "mha")} | {"summary.json", DICOM_SEG_NAME}


def output_folder(
    out_dir: str | Path, overwrite: bool = False, inputs: tuple[str | Path, ...] = (), notes: list[str] | None = None
) -> contextlib.AbstractContextManager[Path]:
    """Lock ``out_dir`` and yield a hidden staging folder, published as ``out_dir`` on success (see :mod:`..io.publish`).

    An existing empty folder is fine (callers such as Slicer create temporary folders first); one
    holding earlier results is refused unless ``overwrite``, so a typo cannot destroy a result.
    Pass the staging folder to :func:`detect_file` with ``final_dir=out_dir``. ``notes`` gets a line for each
    leftover of a killed earlier run that was removed.
    """
    from ..io.publish import output_folder as locked_output_folder

    return locked_output_folder(out_dir, overwrite, RESULT_NAMES, inputs, notes)


def detect_file(
    input_path: str | Path,
    out_dir: str | Path,
    model_path: str | Path | None = None,
    scorer: str | None = None,
    device: str = "auto",
    skull: str = "auto",
    threshold: float | None = None,
    image_format: str = "nii.gz",
    progress: str = "auto",
    model: Any = None,
    series: str | None = None,
    dicom_seg: bool = False,
    final_dir: str | Path | None = None,
    alpha: float = 0.05,
    regions: str | None = None,
    age: float | None = None,
    dicom_uids: tuple[str, str] | None = None,
    dicom_seg_sources: Any = None,
) -> dict[str, Any]:
    """Detect anomalies in ``input_path`` and write heatmap, label map and summary into ``out_dir``.

    ``final_dir``: where ``out_dir`` (a staging folder) will be published; summary.json names the
    outputs there.

    ``dicom_seg`` (DICOM series folder inputs only, checked before any work) also writes the label map
    as a DICOM Segmentation referencing the series (``labelmap.seg.dcm``, see :mod:`.dicom_seg`); whether the
    series can carry one is decided before the detection, and when it cannot, the other outputs are still written
    and the reason is one warning. ``dicom_uids`` (series and SOP instance UID of the SEG) default to new ones;
    ``dicom_seg_sources`` (from :func:`.dicom_sources.seg_sources`) implies ``dicom_seg`` and skips reading them again.

    ``alpha`` and ``regions`` set the conformal subject flag and label-map rule (see :mod:`..score.conformal`);
    ``age`` (years) compares the scan with the calibration scans of its age band (see :mod:`..score.age_bands`).

    Out-of-distribution warnings (see :func:`out_of_distribution_warnings`) go to
    ``summary["warnings"]`` and ``summary["messages"]``.
    """
    from ..bundle.model import Model
    from ..pipeline import DetectOptions, Detector

    t_start = time.perf_counter()
    from ..io.path_checks import check_path, resolved

    check_path(input_path)
    if dicom_seg_sources is not None:  # checked by the caller (the PACS door refuses a series without a SEG)
        seg_sources, seg_warnings = dicom_seg_sources, [f"DICOM SEG: {item}" for item in dicom_seg_sources.derived]
    elif dicom_seg:
        seg_sources, seg_warnings = check_seg_before_detection(input_path, series)
    else:
        seg_sources, seg_warnings = None, []
    dicom_seg = seg_sources is not None
    paths = output_paths(out_dir, image_format, dicom_seg)
    source = resolved(input_path)
    for path in [*paths.values(), *output_paths(final_dir or out_dir, image_format, dicom_seg).values()]:
        if resolved(path) == source:
            raise InputError(f"{path}: output would overwrite the input scan; choose another --out folder")
    display = ProgressDisplay(progress)
    display("read", 0.0)
    t = time.perf_counter()
    image = read_image(input_path, series=series)
    read_s = time.perf_counter() - t
    t = time.perf_counter()
    if model is None:
        model = Model.load(model_path)
    load_s = time.perf_counter() - t
    check_scorer(model, scorer)
    detector = Detector(
        model,
        DetectOptions(
            scorer=scorer, skull=skull, device=device, threshold=threshold, alpha=alpha, regions=regions, age=age
        ),
        progress=display,
    )
    try:
        result = detector.detect(image)
    except InputError as error:
        raise explain_failure(error, detector, image, skull) from None
    kind, kind_warnings = check_input_kind(result.preprocessed, model)  # refuses scans unlike the training data
    t = time.perf_counter()
    write_image(result.heatmap, paths["heatmap"])
    write_image(result.labelmap, paths["labelmap"])
    if seg_sources is not None:
        seg_warnings += write_seg(result, input_path, paths["dicom_seg"], model, seg_sources, dicom_uids)
    write_s = time.perf_counter() - t
    summary = result.summary
    spacing = tuple(float(s) for s in image.GetSpacing())
    summary["warnings"] = [
        *result.preprocessed.notes,
        *thick_slice_warnings(spacing, float(model.preprocess.grid.spacing)),
        *kind_warnings,
        *out_of_distribution_warnings(summary),
        *seg_warnings,
    ]
    notes = seg_sources.notes if seg_sources is not None else []
    summary["messages"] = [*summary.get("messages", []), *notes, *summary["warnings"]]
    dicom_seg = seg_sources is not None and paths["dicom_seg"].is_file()
    summary["input"] = {"path": str(input_path), "voxel_size_mm": list(spacing), "geometry": geometry(image), **kind}
    summary["outputs"] = {k: str(v) for k, v in output_paths(final_dir or out_dir, image_format, dicom_seg).items()}
    summary["timings_s"] = {
        "read": round(read_s, 3),
        "load_model": round(load_s, 3),
        **summary["timings_s"],
        "write": round(write_s, 3),
        "total": round(time.perf_counter() - t_start, 3),
    }
    write_json(summary, paths["summary"])
    return summary
