"""`latent-anomaly evaluate` and the benchmarks: run methods over cases and pool their metrics (the files they
write: :mod:`LatentAnomalyLib.evaluation.outputs`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from ..case import Case
from ..errors import InputError
from ..score.registry import SCORERS
from . import metrics as M
from .cases import LoadedCase, brats_folder_cases, load_case, read_cases_csv
from .methods import MethodOutput, ModelMethods, case_metrics, external_method, intensity_method
from .outputs import SUMMARY_COLUMNS, markdown_table, montage_of_case, write_outputs


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
    cases: Sequence[Case],
    methods: Sequence[Method],
    model: Any = None,
    device: str = "auto",
    sequence: str = "t1",
    montages: bool = True,
    log: Any = print,
    min_lesion_ml: float = 0.0,
) -> dict[str, Any]:
    """Run every method on every case; return per-case rows, pooled summaries and report pieces (lesion-wise
    metrics over the ground-truth components of at least ``min_lesion_ml``)."""
    from ..preprocess.brainmask import stripped_mask

    scorers = [m.params[0] for m in methods if m.kind == "model"]
    model_methods = None
    if scorers:
        if model is None:
            from ..bundle.model import Model

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
                **case_metrics(data, output, min_lesion_ml),
            }
            rows.append(row)
            _pool(pools[method.name], data, output, row, rng)
        if montages:
            images.append(montage_of_case(data, outputs[methods[0].name], methods[0].name))
    summaries = [_summarise(name, pool) for name, pool in pools.items()]
    return {
        "rows": rows,
        "summaries": summaries,
        "pools": pools,
        "montages": images,
        "methods": [m.name for m in methods],
    }


def _pool(pool: Pool, data: LoadedCase, output: MethodOutput, row: dict[str, Any], rng: np.random.Generator) -> None:
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


@dataclass(frozen=True)
class EvaluationOptions:
    """What `latent-anomaly evaluate` runs: the cases (a CSV or a BraTS-like folder), the methods, the output folder."""

    out: str | Path
    cases_csv: str | Path | None = None  # CSV: case_id, one column per sequence, label, healthy
    brats: str | Path | None = None  # or a folder laid out like BraTS
    model: str | Path | None = None  # bundle for the model methods (default: the bundled model)
    methods: str = "model"  # comma-separated, see parse_methods
    heatmaps: str | Path | None = None  # heatmaps computed elsewhere, for the "external" method
    sequence: str = "t1"
    device: str = "auto"
    max_cases: int | None = None
    report: bool = True  # write report.html (tables only when False)
    min_lesion_ml: float = 0.0  # lesion-wise metrics ignore ground-truth components smaller than this


def run_evaluation(options: EvaluationOptions) -> dict[str, Any]:
    """Evaluate ``options.methods`` on the cases and write metrics.csv, metrics.json and report.html."""
    if not 0.0 <= options.min_lesion_ml < float("inf"):
        raise InputError(f"--min-lesion-ml must be a number >= 0, not {options.min_lesion_ml}")
    cases = read_cases_csv(options.cases_csv) if options.cases_csv else brats_folder_cases(options.brats)
    if options.max_cases:
        cases = cases[: options.max_cases]
    methods = parse_methods(options.methods, options.heatmaps)
    model = None
    if any(m.kind == "model" for m in methods):
        from ..bundle.model import Model

        model = Model.load(options.model)
    result = evaluate_cases(
        cases, methods, model, options.device, options.sequence, montages=options.report, min_lesion_ml=options.min_lesion_ml
    )
    paths = write_outputs(
        result, Path(options.out), f"LatentAnomaly evaluation ({len(cases)} cases{_lesion_note(options)})", report=options.report
    )
    text = markdown_table(result["summaries"], SUMMARY_COLUMNS) + "\n" + "\n".join(f"wrote {p}" for p in paths.values())
    return {"text": text, "paths": paths, "result": result}


def _lesion_note(options: EvaluationOptions) -> str:
    """The report title's note on which ground-truth lesions the lesion-wise metrics count."""
    return f"; lesion-wise metrics over lesions of at least {options.min_lesion_ml:g} mL" if options.min_lesion_ml else ""
