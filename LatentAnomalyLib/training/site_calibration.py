"""Calibrate a model on a site's own healthy scans (split conformal): ``latent-anomaly calibrate``.

Why: the p-values hold for scans exchangeable with the calibration scans, and the bundled model's are 118 IXI scans
of one 3T scanner; another scanner's healthy scans are flagged far more often than alpha. Here the encoder and the
scorers stay as they are (nothing is fitted on the site's scans), and each site scan goes through detection exactly
as ``detect`` runs it (:class:`..pipeline.Detector`): preprocessing, encoding, the scorer, its post-processing and
the mapping back to the scan's grid. From those scans come, for the scorer that ``detect`` uses:

- the voxel threshold: the same quantile of post-processed brain voxels (model grid) the model was calibrated with
  (``voxel_fpr``, 1% by default), pooled over the site's scans;
- the conformal calibration sets: each scan's subject statistics and its regions above that threshold (the records
  :mod:`.conformal_bundle` turns into sets), hence exact split-conformal p-values for scans exchangeable with them;
- the subject score's healthy scores and threshold (the model 1.4.0 fields, for the healthy percentile);
- the age bands, given the scans' ages.

The voxel threshold is a pooled quantile over the calibration scans (each weighs 1/n of it), as the bundled model's
was fitted on validation scans that are also in its calibration sets; the sets are then computed at that threshold.
A scan that fails the input checks (unreadable, not a head T1, preprocessing failure) is reported with its reason
and left out; too few usable scans for alpha is refused (:func:`needed_scans`).
"""

from __future__ import annotations

import hashlib
import math
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from ..bundle.model import Model
from ..case import Case
from ..errors import InputError
from ..io.read import read_image
from ..pipeline import DetectOptions, Detector
from ..preprocess.input_kind import check_input_kind
from ..score.base import needs_mirror
from ..score.components import label_components
from ..score.conformal import DEFAULT_ALPHA, check_alpha, p_value_factor
from ..score.subject import subject_score
from .conformal_bundle import SetsOrigin, write
from .crossfit import subject_candidates

Log = Callable[[str], None]


def needed_scans(alpha: float, subject_statistic: str) -> int:
    """How many calibration scans can give a p-value at most ``alpha``: p >= 1 / (n + 1) (2 / (n + 1) for the
    Bonferroni ``combined`` statistic), so n >= factor / alpha - 1."""
    factor = p_value_factor(subject_statistic)
    return max(1, math.ceil(factor / check_alpha(alpha) - 1 - 1e-9))


@dataclass
class MeasuredScan:
    """One healthy scan through detection: what the calibration needs of it, its native heatmap kept on disk."""

    case_id: str
    path: str
    subject: dict[str, float]
    subject_score: float
    voxels: np.ndarray  # post-processed brain voxel scores on the model grid (for the voxel threshold)
    heatmap_file: Path
    brain_volume_ml: float
    warnings: list[str] = field(default_factory=list)


@dataclass
class Rejected:
    case_id: str
    path: str
    reason: str


def measure(detector: Detector, case: Case, folder: Path, names: Sequence[str] | None = None) -> dict[str, MeasuredScan]:
    """``case`` through the detector's pipeline with each of ``names`` (default: the detector's scorer), preprocessed
    and encoded once; raises :class:`InputError` (or another error) for a scan that fails the input checks."""
    path = case.images["t1"]
    image = read_image(path)
    pre = detector.preprocess(image, {})
    _, warnings = check_input_kind(pre, detector.model)  # refuses scans unlike the training data
    names = list(names or [detector.scorer_name])
    encoded = detector.encode(pre, mirrored=any(needs_mirror(detector.model.scorers[n]) for n in names))
    out = {}
    for name in names:
        result = detector._finish(image, pre, encoded, name, {}, 0.0)
        raw = detector.model.scorers[name].score(encoded)
        heatmap_file = folder / f"{case.case_id}.{name}.mha"
        sitk.WriteImage(result.heatmap, str(heatmap_file))
        out[name] = MeasuredScan(
            case.case_id,
            str(path),
            subject_candidates(raw, pre.mask),
            float(subject_score(raw, pre.mask)),
            result.model_heatmap[pre.mask].astype(np.float32),
            heatmap_file,
            float(result.summary["brain_volume_ml"]),
            list(warnings),
        )
    return out


def site_records(scans: Sequence[MeasuredScan], voxel_fpr: float, min_ml: float, scorer: str) -> dict[str, Any]:
    """The voxel threshold over ``scans`` and each scan's record (subject statistics, regions at that threshold), in
    the form :func:`.conformal_bundle.write` reads."""
    threshold = float(np.quantile(np.concatenate([s.voxels for s in scans]), 1.0 - voxel_fpr))
    rows = []
    for scan in scans:
        heatmap = sitk.ReadImage(str(scan.heatmap_file))
        components = label_components(sitk.GetArrayFromImage(heatmap), threshold, heatmap, min_ml)[1]
        rows.append(
            {
                "case_id": scan.case_id,
                "part": "site",
                "subject": scan.subject,
                "regions": [{k: c[k] for k in ("volume_ml", "peak_score", "mean_score")} for c in components],
                "brain_volume_ml": scan.brain_volume_ml,
            }
        )
    return {"scorer": scorer, "voxel_threshold": threshold, "records": rows}


@dataclass
class SiteCalibration:
    """What ``latent-anomaly calibrate`` did: the new bundle, the scans used and those left out."""

    bundle: Path
    used: list[str]
    rejected: list[Rejected]
    voxel_threshold: float
    smallest_p_value: float
    version: str


def calibrate_site(
    model_dir: Path | None,
    cases: Sequence[Case],
    out: Path,
    description: str,
    alpha: float = DEFAULT_ALPHA,
    ages: dict[str, float] | None = None,
    device: str = "cpu",
    skull: str = "auto",
    log: Log = print,
    subject_statistic: str | None = None,
) -> SiteCalibration:
    """A copy of the bundle at ``model_dir`` (default: the bundled model) calibrated on ``cases`` (healthy scans of
    one site), written atomically at ``out``. ``subject_statistic`` replaces the model's subject rule
    (``region_peak`` reaches alpha 0.05 with 19 scans where the bundled ``combined`` needs 39). Raises
    :class:`InputError` when fewer usable scans than :func:`needed_scans` remain."""
    model = Model.load(model_dir)
    name = model.default_scorer
    sets = model.calibration["scorers"][name].get("conformal") or {}
    subject_statistic = subject_statistic or str(sets.get("subject_statistic", "region_peak"))
    need = needed_scans(alpha, subject_statistic)
    if len(cases) < need:
        raise InputError(_too_few(len(cases), need, alpha, subject_statistic))
    names = [name, *filter(None, [model.decision_scorer(name)])]  # a decision scorer is calibrated on the site too
    detector = Detector(model, DetectOptions(scorer=name, device=device, skull=skull, regions="all"))
    detector._sets.update({n: None for n in names})  # measure the raw regions, whatever calibration the bundle holds
    measured: dict[str, list[MeasuredScan]] = {n: [] for n in names}
    rejected: list[Rejected] = []
    with tempfile.TemporaryDirectory(prefix=".calibrate-", dir=_existing_parent(out)) as work:
        for i, case in enumerate(cases, start=1):
            try:
                for n, scan in measure(detector, case, Path(work), names).items():
                    measured[n].append(scan)
                log(f"calibrate {i}/{len(cases)}: {case.case_id}")
            except Exception as error:  # a bad scan is reported, never dropped silently
                reason = " ".join(str(error).split()) or type(error).__name__
                rejected.append(Rejected(case.case_id, str(case.images["t1"]), reason))
                log(f"calibrate {i}/{len(cases)}: {case.case_id} left out: {reason}")
        n_used = len(measured[name])
        if n_used < need:
            raise InputError(_too_few(n_used, need, alpha, subject_statistic, len(rejected)))
        records = {n: _records(model, n, measured[n]) for n in names}
    settings = dict(sets.get("settings") or {"region_statistic": "peak"})
    settings.update(alpha=alpha, site_description=description, subject_statistic=subject_statistic)
    version = _site_version(model.version, [records[n] for n in names], subject_statistic)
    factor = p_value_factor(subject_statistic)
    rule = "Bonferroni over the map statistic and the largest region peak" if factor == 2 else "largest region peak"
    site_note = (  # the model's own sentence on its calibration (118 IXI scans, 2/119) no longer holds
        f" Site calibration: {n_used} healthy scans of {description}; a scan is flagged by its {rule}, so "
        f"p-values are at least {factor}/{n_used + 1}."
    )
    source = model.bundle.folder
    for n in names:  # the second write starts from the first's bundle
        origin = _origin(model, n, measured[n], records[n], description, len(rejected), n != name)
        source = write(
            source, records[n], settings, version, out, ages=ages, sets=origin,
            description=str(model.config.get("description", "")).split(" Site calibration:")[0] + site_note,
        )
    return SiteCalibration(
        source, [s.case_id for s in measured[name]], rejected, records[name]["voxel_threshold"],
        factor / (n_used + 1), version,
    )


def _records(model: Model, name: str, measured: Sequence[MeasuredScan]) -> dict[str, Any]:
    calibration = model.calibration["scorers"][name]
    voxel_fpr = float(calibration.get("voxel_fpr", 0.01))
    return site_records(measured, voxel_fpr, float(calibration.get("min_component_ml", 0.1)), name)


def _origin(
    model: Model, name: str, measured: Sequence[MeasuredScan], records: dict[str, Any], description: str,
    n_left_out: int, decision: bool,
) -> SetsOrigin:
    """Where one scorer's site sets come from, and the calibration fields they replace."""
    calibration = model.calibration["scorers"][name]
    voxel_fpr = float(calibration.get("voxel_fpr", 0.01))
    scores = [s.subject_score for s in measured]
    subject_fpr = float(calibration.get("subject_fpr", 0.05))
    return SetsOrigin(
        description=f"split conformal over {len(measured)} healthy scans of {description} (site calibration: the "
        f"encoder and scorers of {model.name} {model.version} unchanged, none of them fitted on these scans)",
        source=description,
        calibration_updates={
            "voxel_threshold": records["voxel_threshold"],
            "voxel_threshold_rule": f"{100 * (1 - voxel_fpr):g}th percentile of the site's healthy brain voxels "
            f"({len(measured)} scans)",
            "subject": {**calibration["subject"], "threshold": float(np.quantile(scores, 1.0 - subject_fpr)),
                        "healthy_scores": scores},
            "site": {"description": description, "n_scans": len(measured), "n_left_out": n_left_out,
                     "based_on": f"{model.name} {model.version}"},
        },
        metrics_key="site_calibration_decision" if decision else "site_calibration",
    )  # fmt: skip


def _too_few(n: int, need: int, alpha: float, subject_statistic: str, left_out: int = 0) -> str:
    usable = f"{n} usable scans ({left_out} left out)" if left_out else f"{n} scans"
    factor = p_value_factor(subject_statistic)
    smallest = f"{factor}/(n+1)" + (" with the combined rule" if factor == 2 else "")
    return f"{usable} cannot reach alpha {alpha:g}: at least {need} healthy scans are needed (smallest p-value {smallest})"


def _existing_parent(out: Path) -> Path:
    parent = Path(out).resolve().parent
    parent.mkdir(parents=True, exist_ok=True)
    return parent


def _site_version(base: str, records: Sequence[dict[str, Any]], subject_statistic: str) -> str:
    """The model version with a local part naming these sets (every scorer calibrated) and the subject rule, so
    resumed cohort runs tell calibrations apart."""
    key = ([(r["voxel_threshold"], r["records"]) for r in records], subject_statistic)
    digest = hashlib.sha256(repr(key).encode()).hexdigest()[:8]
    return f"{base.split('+')[0]}+site.{digest}"
