"""Model 1.10.0 from model 1.9.0: the fifth probe's chosen map added as a location-normalised scorer, cross-fitted and
calibrated, and made the default (``--role default``, the first candidate: its voxel map lost AUPRC) or the scan's
decision only (``--role decision``, shipped: the heatmap stays 1.9.0's; ``score/scan_decision.py``).

Why a script: docs/map-design.md (fifth probe) chose, on validation data only, a map that normalises the shipped
default map by healthy statistics per place and may add the hemispheric asymmetry
(:class:`LatentAnomalyLib.score.location_normalised.LocationNormalisedScorer`). Its statistics are data: the
per-voxel healthy mean and spread of the 118 cross-fitted calibration maps that
``experiments/location_norm_probe.py`` stored (``runs/location_norm/maps.npz``). The calibration follows the bundle's
own design: every calibration scan is normalised with the statistics of the other four folds, on the map of the
fold scorer that did not see it; the voxel threshold is the 99th percentile of the 20 validation scans' brain voxels;
the records go through ``conformal_bundle.write`` with 1.9.0's settings (``combined`` rule). The encoder, the
other scorers and the preprocessing stay byte for byte.

    cd experiments && python make_bundle_1_10_0.py --variant S_asym_inner --role decision \
        --model ../runs/bundle-1.9.0 --out ../models/latent-anomaly-t1
"""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from location_norm_probe import (
    ASYM_CACHE,
    ASYM_WEIGHT,
    ASYMMETRY_OF,
    BASE,
    INNER,
    OUT,
    asymmetry_statistics,
    calibration_scans,
    cross_fitted_maps,
    statistics_for,
    with_asymmetry,
)

from LatentAnomalyLib.bundle import contents as bundle_contents
from LatentAnomalyLib.bundle.model import Model
from LatentAnomalyLib.evaluation.datasets import data_root, participant_ages
from LatentAnomalyLib.score.base import EncodedScan
from LatentAnomalyLib.score.components import label_components
from LatentAnomalyLib.score.latent_atlas_sum import IDENTITY_POSTPROCESS
from LatentAnomalyLib.score.location_normalised import LocationNormalisedScorer
from LatentAnomalyLib.score.subject import subject_score
from LatentAnomalyLib.training.conformal_bundle import SetsOrigin, write
from LatentAnomalyLib.training.crossfit import subject_candidates

VERSION = "1.10.0"
NAME = "gaussian4mm_atlas_location"


class StoredMap:
    """A base scorer that returns each calibration scan's stored cross-fitted map (looked up by the scan object)."""

    needs = frozenset({"image", "latent"})
    mirror_average = True

    def __init__(self) -> None:
        self.maps: dict[int, np.ndarray] = {}

    def score(self, scan: EncodedScan) -> np.ndarray:
        return self.maps[id(scan)]


def scorer_for(data: dict, scans: list, variant: str, fold: int | None, base: object) -> LocationNormalisedScorer:
    """The library scorer with the statistics of every fold but ``fold`` (``None``: all 118 scans)."""
    mean, spread = statistics_for(data, ASYMMETRY_OF.get(variant, variant), fold)
    asym = asymmetry_statistics(scans, data, fold) if variant in ASYMMETRY_OF else None
    settings = {"variant": variant, "sigma_vox": 2.0, "floor_fraction": 0.5, "min_scans": 20, "folds_used": "all"}
    weight = ASYM_WEIGHT if asym is not None else 0.0
    scorer = LocationNormalisedScorer(BASE, mean, spread, settings, asym, weight, INNER.get(variant, 0))
    scorer.bind({BASE: base}, {"scorers": {BASE: {"postprocess": IDENTITY_POSTPROCESS}}})
    return scorer


def records_and_entry(model: Model, data: dict, scans: list, variant: str) -> tuple[dict, dict]:
    """Cross-fit records (as ``training.crossfit`` writes them) and the scorer's calibration entry."""
    base = StoredMap()
    folds = sorted(set(data["folds"].tolist()))
    fold_scorers = {f: scorer_for(data, scans, variant, f, base) for f in folds}
    maps = []
    for i, (_, scan) in enumerate(scans):
        base.maps[id(scan.encoded)] = data["maps"][i]
        maps.append(fold_scorers[int(data["folds"][i])].score(scan.encoded))
    # the library scorer reproduces the probe's map exactly (same statistics, same formula)
    probe = data["maps"][0]
    stats = statistics_for(data, ASYMMETRY_OF.get(variant, variant), int(data["folds"][0]))
    probe = np.where(data["masks"][0], (probe - stats[0]) / stats[1], 0.0).astype(np.float32)
    if variant in ASYMMETRY_OF:
        asym = asymmetry_statistics(scans, data, int(data["folds"][0]))
        probe = with_asymmetry(probe, ASYM_CACHE["maps"][0], asym, data["masks"][0], INNER.get(variant, 0))
    np.testing.assert_allclose(maps[0], probe, rtol=1e-5, atol=1e-5)
    val = [i for i, (part, _) in enumerate(scans) if part == "val"]
    threshold = float(np.quantile(np.concatenate([maps[i][scans[i][1].pre.mask] for i in val]), 0.99))
    records = []
    for i, (part, scan) in enumerate(scans):
        heat = scan.pre.to_native(maps[i], model.preprocess.grid)
        regions = label_components(sitk.GetArrayFromImage(heat), threshold, heat, 0.1)[1]
        voxel_ml = float(np.prod(heat.GetSpacing())) / 1000.0
        records.append({
            "case_id": scan.case_id, "part": part, "fold": int(data["folds"][i]),
            "subject": subject_candidates(maps[i], scan.pre.mask),
            "regions": [{k: c[k] for k in ("volume_ml", "peak_score", "mean_score")} for c in regions],
            "brain_volume_ml": float(scan.pre.native_mask.sum()) * voxel_ml,
        })  # fmt: skip
    subjects = [subject_score(maps[i], scans[i][1].pre.mask) for i in val]
    flagged = [float((maps[i][scans[i][1].pre.mask] > threshold).mean()) for i in val]
    entry = {
        "voxel_fpr": 0.01,
        "subject_fpr": 0.05,
        "voxel_threshold": threshold,
        "voxel_threshold_rule": "99th percentile of the healthy validation scans' cross-fitted brain voxels",
        "min_component_ml": 0.1,
        "subject": {
            "statistic": "mean of the top 1% brain voxel scores",
            "threshold": float(np.quantile(subjects, 0.95)),
            "healthy_scores": [float(v) for v in subjects],
        },
        "validation_flagged_fraction_median": float(np.median(flagged)),
        "n_validation_scans": len(val),
    }
    settings = model.calibration["scorers"][BASE]["conformal"]["settings"]
    out = {"model": f"{model.name} {VERSION}", "scorer": NAME, "folds": int(settings["folds"]),
           "seed": int(settings["seed"]), "voxel_threshold": threshold, "records": records}  # fmt: skip
    return out, entry


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", required=True, choices=sorted(DESCRIPTION_ADDED))
    parser.add_argument("--model", type=Path, required=True, help="the 1.9.0 bundle")
    parser.add_argument("--out", type=Path, required=True, help="where to write 1.10.0 (may be --model)")
    parser.add_argument(
        "--role",
        choices=("default", "decision"),
        default="decision",
        help="the new scorer as the default map (the first candidate) or only as the scan's decision, the heatmap and "
        "label map staying 1.9.0's (the shipped 1.10.0)",
    )
    args = parser.parse_args()
    model = Model.load(args.model)
    if model.version != "1.9.0":
        raise SystemExit(f"expected model 1.9.0, got {model.version}")
    scans = calibration_scans(model)
    data = cross_fitted_maps(model, scans)
    records, entry = records_and_entry(model, data, scans, args.variant)
    work = OUT / f"bundle-{args.variant}"
    work.mkdir(parents=True, exist_ok=True)
    (work / "records.json").write_text(json.dumps(records, indent=1))
    arrays, meta = scorer_for(data, scans, args.variant, None, StoredMap()).state()
    contents = bundle_contents.read(model.bundle)
    contents.scorers[NAME] = {**meta, "postprocess": dict(IDENTITY_POSTPROCESS), "calibration": entry}
    contents.config["scorers"][NAME] = {"meta": f"scorers/{NAME}.json", "arrays": f"scorers/{NAME}.safetensors"}
    if args.role == "default":
        contents.config["default_scorer"] = NAME
    else:
        contents.config["decision_scorers"] = {BASE: NAME}
    staged = bundle_contents.rewrite(
        model.bundle, contents, work / "staged", VERSION, arrays={f"scorers/{NAME}.safetensors": arrays}
    )
    settings = copy.deepcopy(model.calibration["scorers"][BASE]["conformal"]["settings"])
    settings["how"] = (
        f"python experiments/make_bundle_1_10_0.py --variant {args.variant} --role {args.role} (after experiments/location_norm_probe.py;"
        " docs/map-design.md, fifth probe)"
    )
    ages = participant_ages(data_root() / "ixi-t1" / "participants.csv")
    added = DESCRIPTION_ADDED[args.variant] if args.role == "default" else DECISION_ADDED[args.variant]
    origin = SetsOrigin(  # write()'s IXI cross-fit wording; metrics.json keeps 1.9.0's "crossfit" record
        f"{records['folds']}-fold cross-fit over {len(records['records'])} healthy IXI scans (98 train + 20 validation; "
        "Hammersmith Hospital 3T; the test split never used): the scorer's statistics fitted on the other folds, the "
        "encoder unchanged",
        "IXI",
        metrics_key=f"crossfit_{NAME}",
    )
    out = write(staged, records, settings, VERSION, args.out, model.config["description"] + added, ages, origin)
    print(f"wrote {out} (model {VERSION}, {NAME} as the {args.role}, voxel threshold {entry['voxel_threshold']:.3f})")


ASYMMETRY_WORDS = (
    " plus half the hemispheric asymmetry (the latent difference between the scan and its mirrored copy, normalised "
    "by healthy scans at each place, read only 4 mm inside both sides of the brain and on the side whose map is the "
    "higher)"
)
DESCRIPTION_ADDED = {
    "C_mean_inner": " Model 1.10.0: the default map is 1.9.0's minus the healthy mean of that map at each place"
    + ASYMMETRY_WORDS
    + ", cross-fitted and calibrated on the same 118 scans.",
    "S_asym_inner": " Model 1.10.0: the default map is 1.9.0's"
    + ASYMMETRY_WORDS
    + ", cross-fitted and calibrated on the same 118 scans.",
}
DECISION_ADDED = {
    "S_asym_inner": f" Model 1.10.0: a scan's p-value and flag come from the scorer {NAME}, 1.9.0's default map"
    + ASYMMETRY_WORDS
    + ", cross-fitted and calibrated on the same 118 scans (same combined rule); the heatmap, the regions and the "
    "label map stay 1.9.0's default map, and a flagged scan shows every region of it above its voxel threshold.",
}


if __name__ == "__main__":
    main()
