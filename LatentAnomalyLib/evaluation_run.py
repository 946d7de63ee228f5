"""`latent-anomaly evaluate` and the benchmarks: run methods over cases, pool metrics, write reports."""

from __future__ import annotations

import argparse
import csv
import io as _io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from . import metrics as M
from .errors import InputError
from .evaluation import (
    CaseData,
    EvalCase,
    MethodOutput,
    ModelMethods,
    brats_folder_cases,
    case_metrics,
    external_method,
    intensity_method,
    load_case,
    read_cases_csv,
)
from .io import atomic_path, write_json
from .scorers import SCORERS

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


@dataclass(frozen=True)
class Method:
    name: str
    kind: str  # model | intensity | heatmaps
    params: tuple[str, ...] = ()


def parse_methods(text: str, heatmaps: str | None = None, default_scorer: str = "default") -> list[Method]:
    methods = []
    for item in [t.strip() for t in text.split(",") if t.strip()]:
        parts = item.split(":")
        if parts[0] == "model":
            scorer = parts[1] if len(parts) > 1 else default_scorer
            methods.append(Method(f"model:{scorer}", "model", (scorer,)))
        elif parts[0] in SCORERS:
            methods.append(Method(f"model:{parts[0]}", "model", (parts[0],)))
        elif parts[0] == "intensity":
            if len(parts) < 2:
                raise InputError("intensity methods need a sequence: intensity:flair[:high|low|abs]")
            direction = parts[2] if len(parts) > 2 else "high"
            methods.append(Method(f"intensity:{parts[1]}:{direction}", "intensity", (parts[1], direction)))
        else:
            raise InputError(
                f"unknown method {item!r}; use model[:scorer], atlas, residual, intensity:<sequence>[:direction]"
            )
    if heatmaps:
        methods.append(Method("heatmaps", "heatmaps", (heatmaps,)))
    if not methods:
        raise InputError("no methods to evaluate")
    return methods


@dataclass
class Pool:
    """What is kept per method across cases for pooled metrics, curves and histograms."""

    scores: list[np.ndarray] = field(default_factory=list)
    labels: list[np.ndarray] = field(default_factory=list)
    healthy_sample: list[np.ndarray] = field(default_factory=list)
    lesion_sample: list[np.ndarray] = field(default_factory=list)
    thresholds: set[float] = field(default_factory=set)
    subject: list[tuple[float, bool]] = field(default_factory=list)
    healthy_flagged: list[float] = field(default_factory=list)
    lesions: list[dict[str, Any]] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)


def _sample(values: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    return values if values.size <= n else rng.choice(values, n, replace=False)


def evaluate_cases(
    cases: Sequence[EvalCase],
    methods: Sequence[Method],
    model: Any = None,
    device: str = "auto",
    sequence: str = "t1",
    montages: bool = True,
    log: Any = print,
) -> dict[str, Any]:
    """Run every method on every case; return per-case rows, pooled summaries and report pieces."""
    from .brainmask import stripped_mask

    scorers = [m.params[0] for m in methods if m.kind == "model"]
    model_methods = None
    if scorers:
        if model is None:
            from .model import Model

            model = Model.load()
        scorers = [model.default_scorer if s == "default" else s for s in scorers]
        model_methods = ModelMethods(model, scorers, device, sequence)
        methods = [
            Method(f"model:{model.default_scorer}", "model", (model.default_scorer,))
            if m.kind == "model" and m.params[0] == "default"
            else m
            for m in methods
        ]

    def brain_from(image: sitk.Image) -> np.ndarray:
        if model_methods is not None:
            return model_methods.brain_mask(image)
        return sitk.GetArrayFromImage(stripped_mask(image)) > 0

    rng = np.random.default_rng(0)
    pools = {m.name: Pool() for m in methods}
    rows: list[dict[str, Any]] = []
    images: list[tuple[str, str]] = []
    for number, case in enumerate(cases, start=1):
        log(f"[{number}/{len(cases)}] {case.case_id}")
        data = load_case(case, sequence, brain_from)
        outputs: dict[str, MethodOutput] = {}
        if model_methods is not None:
            outputs.update(model_methods.run(data))
        for method in methods:
            if method.kind == "intensity":
                outputs[method.name] = intensity_method(data, *method.params)
            elif method.kind == "heatmaps":
                outputs[method.name] = external_method(data, Path(method.params[0]), None)
        for method in methods:
            output = outputs[method.name]
            row = {
                "case_id": case.case_id,
                "method": method.name,
                "healthy": case.healthy,
                **case_metrics(data, output),
            }
            rows.append(row)
            _pool(pools[method.name], data, output, row, rng)
        if montages:
            images.append(_montage(data, outputs[methods[0].name], methods[0].name))
    summaries = [_summarise(name, pool) for name, pool in pools.items()]
    return {
        "rows": rows,
        "summaries": summaries,
        "pools": pools,
        "montages": images,
        "methods": [m.name for m in methods],
    }


def _pool(pool: Pool, data: CaseData, output: MethodOutput, row: dict[str, Any], rng: np.random.Generator) -> None:
    brain = data.brain
    heat = output.heatmap[brain]
    pool.seconds.append(output.seconds)
    if output.threshold is not None:
        pool.thresholds.add(float(output.threshold))
    has_lesion = data.label is not None and bool(data.label[brain].any())
    if output.subject_score is not None and (has_lesion or data.case.healthy):
        pool.subject.append((output.subject_score, has_lesion))
    if data.case.healthy and "flagged_fraction" in row:
        pool.healthy_flagged.append(row["flagged_fraction"])
    if has_lesion:
        truth = data.label[brain]
        pool.scores.append(heat.astype(np.float32))
        pool.labels.append(truth)
        pool.healthy_sample.append(_sample(heat[~truth], 20000, rng))
        pool.lesion_sample.append(_sample(heat[truth], 20000, rng))
        if "n_lesions" in row:
            pool.lesions.append(row)
    elif data.case.healthy:
        pool.healthy_sample.append(_sample(heat, 20000, rng))


def _summarise(name: str, pool: Pool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "method": name,
        "cases": len(pool.seconds),
        "seconds_per_case": float(np.mean(pool.seconds)) if pool.seconds else None,
    }
    threshold = next(iter(pool.thresholds)) if len(pool.thresholds) == 1 else None
    if pool.scores:
        pooled = M.voxel_metrics(np.concatenate(pool.scores), np.concatenate(pool.labels), threshold)
        out.update(
            {
                k: pooled.get(k)
                for k in ("auroc", "auprc", "best_dice", "dice", "precision", "recall", "fpr_at_95_recall")
            }
        )
    if pool.lesions:
        n_lesions = sum(r["n_lesions"] for r in pool.lesions)
        out["lesion_sensitivity"] = sum(r["n_detected"] for r in pool.lesions) / n_lesions if n_lesions else None
        out["fp_components_per_scan"] = float(np.mean([r["n_false_positive_components"] for r in pool.lesions]))
    if pool.healthy_flagged:
        out["healthy_flagged_median"] = float(np.median(pool.healthy_flagged))
    subject = (
        M.subject_metrics([s for s, _ in pool.subject], [lesion for _, lesion in pool.subject]) if pool.subject else {}
    )
    out["subject_auroc"], out["subject_ap"] = subject.get("auroc"), subject.get("average_precision")
    return out


def _as_lps(reference: sitk.Image, array: np.ndarray | None) -> np.ndarray | None:
    """``array`` (on ``reference``'s grid) reoriented so that x runs to the left, y back and z up (LPS)."""
    if array is None:
        return None
    boolean = array.dtype == bool
    image = sitk.GetImageFromArray(np.ascontiguousarray(array, dtype=np.uint8 if boolean else None))
    image.CopyInformation(reference)
    oriented = sitk.GetArrayFromImage(sitk.DICOMOrient(image, "LPS"))
    return oriented.astype(bool) if boolean else oriented


def _montage(data: CaseData, output: MethodOutput, method: str) -> tuple[str, str]:
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

    pools: dict[str, Pool] = result["pools"]
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


def run_evaluation(args: argparse.Namespace) -> dict[str, Any]:
    cases = read_cases_csv(args.cases) if args.cases else brats_folder_cases(args.brats)
    if args.max_cases:
        cases = cases[: args.max_cases]
    methods = parse_methods(args.methods, args.heatmaps)
    model = None
    if any(m.kind == "model" for m in methods):
        from .model import Model

        model = Model.load(args.model)
    result = evaluate_cases(cases, methods, model, args.device, args.sequence, montages=not args.no_report)
    paths = write_outputs(
        result, Path(args.out), f"LatentAnomaly evaluation ({len(cases)} cases)", report=not args.no_report
    )
    text = markdown_table(result["summaries"], SUMMARY_COLUMNS) + "\n" + "\n".join(f"wrote {p}" for p in paths.values())
    return {"text": text, "paths": paths, "result": result}
