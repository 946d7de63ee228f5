"""The files of one evaluation: metrics.csv, metrics.json and report.html (curves, histograms, per-case montages).

`latent-anomaly evaluate` and the benchmarks compute with :mod:`LatentAnomalyLib.evaluation.run`; what they write
and how a case is drawn for the report is here, so the drawing conventions (LPS orientation, the viewing module's
window and colours) live in one place.
"""

from __future__ import annotations

import csv
import io as _io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from ..io.write import atomic_path, write_json
from . import metrics as M
from .cases import LoadedCase
from .methods import MethodOutput

SUMMARY_COLUMNS = (
    "method",
    "cases",
    "auroc",
    "auprc",
    "best_dice",
    "dice",
    "precision",
    "recall",
    "fpr_at_95_recall",
    "lesion_sensitivity",
    "fp_components_per_scan",
    "healthy_flagged_median",
    "subject_auroc",
    "subject_ap",
    "seconds_per_case",
)


def _as_lps(reference: sitk.Image, array: np.ndarray | None) -> np.ndarray | None:
    """``array`` (on ``reference``'s grid) reoriented so that x runs to the left, y back and z up (LPS)."""
    if array is None:
        return None
    boolean = array.dtype == bool
    image = sitk.GetImageFromArray(np.ascontiguousarray(array, dtype=np.uint8 if boolean else None))
    image.CopyInformation(reference)
    oriented = sitk.GetArrayFromImage(sitk.DICOMOrient(image, "LPS"))
    return oriented.astype(bool) if boolean else oriented


def montage_of_case(data: LoadedCase, output: MethodOutput, method: str) -> tuple[str, str]:
    """The report's montage of one case, reoriented to LPS so that every scan shows the same way up, with the
    method's own voxel threshold and the evaluation brain (the scan window's percentiles are taken inside it)."""
    from .report import montage

    reference = data.reference
    image = sitk.GetArrayFromImage(sitk.DICOMOrient(reference, "LPS"))
    spacing = tuple(sitk.DICOMOrient(reference, "LPS").GetSpacing()[::-1])
    heatmap = _as_lps(reference, output.heatmap.astype(np.float32))
    brain = _as_lps(reference, data.brain)
    vmax = float(np.percentile(output.heatmap[data.brain], 99.5)) if data.brain.any() else None
    uri = montage(
        image,
        heatmap,
        _as_lps(reference, data.label),
        _as_lps(reference, output.prediction),
        f"{data.case.case_id} ({method})",
        spacing,
        vmax,
        threshold=output.threshold,
        brain=brain,
    )
    return data.case.case_id, uri


def markdown_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    def cell(value: Any) -> str:
        if value is None:
            return "–"
        if isinstance(value, float):
            return f"{value:.3f}"
        return str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def write_outputs(result: dict[str, Any], out: Path, title: str, report: bool = True) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    rows = result["rows"] + [{"case_id": "POOLED", **s} for s in result["summaries"]]
    columns = sorted({k for r in rows for k in r}, key=lambda k: (k not in ("case_id", "method", "healthy"), k))
    buffer = _io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    with atomic_path(out / "metrics.csv") as tmp:
        tmp.write_text(buffer.getvalue())
    spread = {}
    for method in result["methods"]:
        per_case = [r for r in result["rows"] if r["method"] == method]
        spread[method] = {k: M.summarise([r.get(k) for r in per_case]) for k in ("auroc", "auprc", "best_dice", "dice")}
    write_json(
        {"title": title, "summaries": result["summaries"], "per_case_spread": spread, "cases": result["rows"]},
        out / "metrics.json",
    )
    paths = {"csv": out / "metrics.csv", "json": out / "metrics.json"}
    if report:
        paths["html"] = _write_report(result, out / "report.html", title)
    return paths


def _write_report(result: dict[str, Any], path: Path, title: str) -> Path:
    from .report import plot_curves, plot_histograms, write_report

    pools: dict[str, Any] = result["pools"]
    sections: list[dict[str, Any]] = [
        {
            "heading": "Pooled metrics",
            "text": "Voxel metrics pool every evaluated brain voxel of the cases with lesions. Best Dice uses the ground truth "
            "to choose its threshold (oracle); Dice, precision and recall use the method's own threshold "
            "(the model's calibrated 1% voxel false-positive rate on healthy validation scans; z > 3 for intensity).",
            "table": {
                "columns": list(SUMMARY_COLUMNS),
                "rows": [[s.get(c) for c in SUMMARY_COLUMNS] for s in result["summaries"]],
            },
        }
    ]
    curves = {
        name: M.roc_pr_curves(np.concatenate(p.scores), np.concatenate(p.labels))
        for name, p in pools.items()
        if p.scores
    }
    if curves:
        sections.append({"heading": "ROC and precision-recall curves", "images": [plot_curves(curves)]})
        healthy = {n: np.concatenate(p.healthy_sample) for n, p in pools.items() if p.healthy_sample}
        lesion = {n: np.concatenate(p.lesion_sample) for n, p in pools.items() if p.lesion_sample}
        thresholds = {n: (next(iter(p.thresholds)) if len(p.thresholds) == 1 else None) for n, p in pools.items()}
        sections.append(
            {"heading": "Healthy versus lesion voxel scores", "images": [plot_histograms(healthy, lesion, thresholds)]}
        )
    case_columns = [
        "case_id",
        "method",
        "auroc",
        "auprc",
        "best_dice",
        "dice",
        "n_lesions",
        "n_detected",
        "n_false_positive_components",
        "flagged_fraction",
        "subject_score",
    ]
    sections.append(
        {
            "heading": "Per case",
            "table": {"columns": case_columns, "rows": [[r.get(c) for c in case_columns] for r in result["rows"]]},
        }
    )
    for case_id, uri in result["montages"]:
        sections.append({"heading": case_id, "images": [uri]})
    return write_report(path, title, sections)
