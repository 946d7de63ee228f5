"""The calibration stage of `latent-anomaly train`: the bundle it wrote gets conformal calibration sets (p-values).

Why: a bundle without calibration sets has no p-values (detect falls back to thresholds). The bundled model's sets
come from a k-fold cross-fit over its training and validation scans (:mod:`.crossfit`): the scorer's statistics
fitted on the other folds, each held-out scan through detection; this stage does the same for every model ``train``
writes, on the run's own scans (IXI split or own cohort), with the configuration's ``conformal`` block (defaults:
:data:`DEFAULTS`). A default scorer that cannot be cross-fitted (not a latent scorer: e.g. the residual or an
encoder family's own score) is calibrated on the validation scans only, which its fit never saw.

Resumable: the preprocessed and encoded scans (``calibration/scans``), the fold scorers and ``records.json`` stay in
the work folder, keyed by the encoder's and scorer's SHA256; a rerun with the same bundle reuses them.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from ..bundle.model import Model
from ..pipeline import DetectOptions, Detector
from ..score.latent_atlas_sum import LatentAtlasSumScorer
from ..score.registry import LATENT_SCORERS
from .conformal_bundle import SetsOrigin, write
from .crossfit import crossfit_scans, held_out_record
from .scan_cache import cached

DEFAULTS = {
    "folds": 5,
    "subject_statistic": "region_peak",
    "region_statistic": "peak",
    "regions_shown": "flagged_scan",
    "alpha": 0.05,
}


def settings(run: Any) -> dict[str, Any]:
    """The configuration's ``conformal`` block over :data:`DEFAULTS` (seed: the run's)."""
    return {**DEFAULTS, "seed": run.config.seed, **run.config.raw.get("conformal", {})}


def _key(model: Model, name: str) -> dict[str, str]:
    files = model.bundle.manifest["files"]
    return {"encoder": files.get("encoder.safetensors", ""), "scorer": files.get(f"scorers/{name}.json", ""),
            "scorer_arrays": files.get(f"scorers/{name}.safetensors", ""), "scorer_name": name}


def cross_fittable(model: Model, name: str) -> bool:
    return name in LATENT_SCORERS or isinstance(model.scorers[name], LatentAtlasSumScorer)


def stage_calibration(run: Any, out: Path) -> Path:
    """Add the default scorer's calibration sets to the bundle at ``out`` (rewritten in place, atomically)."""
    model = Model.load(out)
    name = model.default_scorer
    conformal = settings(run)
    work = run.path("calibration")
    key = _key(model, name)
    key_file = work / "key.json"
    if key_file.is_file() and json.loads(key_file.read_text()) != key:  # another encoder or scorer: start again
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    key_file.write_text(json.dumps(key, indent=1))
    detector = Detector(model, DetectOptions(scorer=name, device="cpu"))
    parts = ("train", "val") if cross_fittable(model, name) else ("val",)
    scans = []
    progress = run.progress("calibration scans", sum(len(run.cases(p)) for p in parts))
    for part in parts:
        for case in run.cases(part):
            scans.append((part, cached(detector, work / "scans", case.case_id, case.images[run.sequence.lower()])))
            progress.case_done(case.case_id, "encoded")
    records_file = work / "records.json"
    if records_file.is_file() and _same_scans(json.loads(records_file.read_text()), scans):
        run.log("calibration records exist; reusing them")
        records = json.loads(records_file.read_text())
    elif cross_fittable(model, name):
        k = max(2, min(int(conformal["folds"]), len(scans)))
        records = crossfit_scans(model, name, scans, work, k, int(conformal["seed"]), run.log)
    else:
        records = _validation_records(model, name, scans)
        records_file.write_text(json.dumps(records, indent=1))
    origin = _origin(run, records, len(scans))
    written = write(out, records, conformal, run.config.version, out, run.config.description, None, origin)
    run.log(f"calibration: {len(records['records'])} healthy scans ({origin.source}); smallest p-value "
            f"{1 / (len(records['records']) + 1):.3f}")
    return written


def _same_scans(records: dict[str, Any], scans: list[tuple[str, Any]]) -> bool:
    return sorted(r["case_id"] for r in records.get("records", [])) == sorted(s.case_id for _, s in scans)


def _validation_records(model: Model, name: str, scans: list[tuple[str, Any]]) -> dict[str, Any]:
    """Records of the validation scans with the model's own scorer (fitted on the training scans only)."""
    rows = [{"case_id": s.case_id, "part": part, "fold": 0, **held_out_record(model, name, model.scorers[name], s)}
            for part, s in scans]
    return {"model": f"{model.name} {model.version}", "scorer": name, "folds": 1, "seed": None,
            "voxel_threshold": float(model.calibration["scorers"][name]["voxel_threshold"]), "records": rows}


def _origin(run: Any, records: dict[str, Any], n: int) -> SetsOrigin:
    source = f"training scans of {Path(run.source.scans).name}" if run.source is not None else "IXI"
    if records["folds"] > 1:
        how = (f"{records['folds']}-fold cross-fit over {n} healthy training and validation scans ({source}): the "
               "scorer's statistics fitted on the other folds, the encoder unchanged")
    else:
        how = f"{n} healthy validation scans ({source}), which the scorer's fit never saw"
    return SetsOrigin(how, source, metrics_key="crossfit")
