"""Site calibration on simulated scanners: flag rates of healthy held-out scans and synthetic-lesion sensitivity,
with the bundled IXI calibration and with a calibration on the site's own healthy scans (``latent-anomaly
calibrate``, :mod:`LatentAnomalyLib.training.site_calibration`).

A "site" is a fixed transform of healthy IXI scans the model never fitted on (the validation and test splits,
``splits/ixi_t1_split.json``), :mod:`benchmarks.simulated_sites`: another acquisition (contrast, bias and coil
fields, noise, thick slices or a blur: A, B) or another skull-stripping tool (C, D). Each site's scans are split in two halves (seeded): the
site is calibrated on the first half exactly as ``latent-anomaly calibrate`` does (same functions), and the other
half is tested against both calibrations; then one synthetic lesion (:mod:`LatentAnomalyLib.evaluation.synthetic`,
painted on the model grid after preprocessing, kinds in turn) is put in each of the first ``--lesions`` held-out
scans and detected again.
A scan is flagged when its subject p-value (the largest region peak's, model 1.8.0's rule) is at most alpha.

    python benchmarks/site_calibration.py [--scans 40] [--lesions 8] [--sites A,B,C,D] [--out runs/site_calibration]
    python benchmarks/site_calibration.py --table        # the table again, from <out>/results.json
    python benchmarks/site_calibration.py --pilot 3      # IXI train scans only: the IXI p-values per site
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import SimpleITK as sitk

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine, require_data
from benchmarks.simulated_sites import SEED, SITES, site_scan
from LatentAnomalyLib.bundle.model import Model
from LatentAnomalyLib.case import Case
from LatentAnomalyLib.evaluation import datasets
from LatentAnomalyLib.evaluation.synthetic import KINDS, paint_lesion
from LatentAnomalyLib.io.read import read_image
from LatentAnomalyLib.pipeline import DetectOptions, Detector
from LatentAnomalyLib.score.components import label_components
from LatentAnomalyLib.score.conformal import load_sets, p_value
from LatentAnomalyLib.training.conformal_bundle import calibration_arrays
from LatentAnomalyLib.training.site_calibration import measure, site_records

ALPHAS = (0.05, 0.01)


def peak_at(heatmap_file: Path, threshold: float, min_ml: float) -> float:
    """The largest region peak score at ``threshold`` (0 without a region), as detect computes it."""
    heatmap = sitk.ReadImage(str(heatmap_file))
    components = label_components(sitk.GetArrayFromImage(heatmap), threshold, heatmap, min_ml)[1]
    return max((float(c["peak_score"]) for c in components), default=0.0)


def lesion_heatmap(detector: Detector, path: Path, rng: np.random.Generator, kind: str, work: Path) -> Path:
    """One synthetic lesion painted into the preprocessed scan, then detection's scoring and mapping back."""
    image = read_image(path)
    pre = detector.preprocess(image, {})
    lesion = paint_lesion(pre.image, pre.mask, rng, kind)
    pre = replace(pre, image=lesion.image.astype(pre.image.dtype))
    result = detector._finish(image, pre, detector.encode(pre), detector.scorer_name, {}, 0.0)
    target = work / f"lesion-{path.name.split('.')[0]}.mha"
    sitk.WriteImage(result.heatmap, str(target))
    return target


def rate(flags: list[bool]) -> dict[str, float]:
    return {"flagged": int(sum(flags)), "n": len(flags), "rate": float(np.mean(flags)) if flags else math.nan}


def run_site(
    name: str, site: dict[str, float], cases: list[Case], model: Model, work: Path, n_lesions: int, log=print
) -> dict:
    deciding = model.decision_scorer(model.default_scorer) or model.default_scorer  # the map that flags a scan
    detector = Detector(model, DetectOptions(scorer=deciding, device="cpu", regions="all"))
    scorer = detector.scorer_name
    detector._sets[scorer] = None
    ixi = load_sets(model, scorer)
    calibration = model.calibration["scorers"][scorer]
    min_ml = float(calibration.get("min_component_ml", 0.1))
    folder = work / name
    folder.mkdir(parents=True, exist_ok=True)
    order = np.random.default_rng(SEED).permutation(len(cases))
    half = len(cases) // 2
    parts = {"calibration": [cases[i] for i in order[:half]], "held_out": [cases[i] for i in order[half:]]}
    measured: dict[str, list] = {"calibration": [], "held_out": []}
    lesions = []
    rng = np.random.default_rng(SEED)
    for part, items in parts.items():
        for i, case in enumerate(items):
            t = time.time()
            path = folder / f"{case.case_id}.nii.gz"
            if not path.is_file():
                sitk.WriteImage(site_scan(case, site), str(path))
            scan = measure(detector, Case(case.case_id, {"t1": path}), folder)[scorer]
            measured[part].append(scan)
            if part == "held_out" and i < n_lesions:
                lesions.append(lesion_heatmap(detector, path, rng, KINDS[i % len(KINDS)], folder))
            log(f"site {name} {part} {case.case_id}: {time.time() - t:.1f}s")
    records = site_records(measured["calibration"], float(calibration.get("voxel_fpr", 0.01)), min_ml, scorer)
    site_max = calibration_arrays(records, "region_peak", "peak")[f"{scorer}.region_max"]
    thresholds = {"IXI": float(calibration["voxel_threshold"]), "site": records["voxel_threshold"]}
    sets = {"IXI": ixi.region_max, "site": site_max}

    def p_values(files: list[Path]) -> dict[str, list[float]]:
        return {k: [p_value(peak_at(f, thresholds[k], min_ml), sets[k]) for f in files] for k in sets}

    held = p_values([s.heatmap_file for s in measured["held_out"]])
    cal_ixi = [
        p_value(peak_at(s.heatmap_file, thresholds["IXI"], min_ml), ixi.region_max) for s in measured["calibration"]
    ]
    lesion = p_values(lesions)
    out = {
        "site": site,
        "n_calibration": half,
        "n_held_out": len(cases) - half,
        "voxel_threshold": thresholds,
        "held_out_p": held,
        "lesion_p": lesion,
        "calibration_half_ixi_p": cal_ixi,
        "results": {},
    }
    for alpha in ALPHAS:
        out["results"][str(alpha)] = {
            "healthy_held_out": {k: rate([p <= alpha for p in v]) for k, v in held.items()},
            "healthy_calibration_half_ixi": rate([p <= alpha for p in cal_ixi]),
            "lesion_held_out": {k: rate([p <= alpha for p in v]) for k, v in lesion.items()},
            "bound_alpha_plus_2se": alpha + 2 * math.sqrt(alpha * (1 - alpha) / (len(cases) - half)),
            "site_smallest_p": 1 / (half + 1),
        }
    return out


def table(results: dict, alphas: tuple[float, ...] = (0.01, 0.05, 0.1, 0.2)) -> str:
    """Flag rates from the stored p-values, at ``alphas`` (the run's 0.05 and 0.01, and 0.1 and 0.2)."""
    lines = [
        "| site | alpha | healthy held-out flagged: IXI calibration | site calibration | bound alpha + 2 SE | "
        "IXI calibration, site's calibration half | lesion scans flagged: IXI calibration | site calibration |",
        "|---|---|---|---|---|---|---|---|",
    ]

    def count(ps: list[float], alpha: float) -> str:
        return f"{sum(p <= alpha for p in ps)}/{len(ps)}"

    for name, site in results.items():
        n = len(site["held_out_p"]["site"])
        for alpha in alphas:
            h, les = site["held_out_p"], site["lesion_p"]
            bound = alpha + 2 * math.sqrt(alpha * (1 - alpha) / n)
            lines.append(
                f"| {name} | {alpha:g} | {count(h['IXI'], alpha)} | {count(h['site'], alpha)} | {bound:.3f} | "
                f"{count(site['calibration_half_ixi_p'], alpha)} | {count(les['IXI'], alpha)} | "
                f"{count(les['site'], alpha)} |"
            )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scans", type=int, default=40, help="per site: the first N of IXI validation + test")
    parser.add_argument("--lesions", type=int, default=8, help="per site: held-out scans given a synthetic lesion")
    parser.add_argument("--out", default="runs/site_calibration")
    parser.add_argument("--pilot", type=int, help="only: the IXI p-values of N transformed IXI train scans per site")
    parser.add_argument("--table", action="store_true", help="only: the table of <out>/results.json")
    parser.add_argument("--sites", default=",".join(SITES), help="comma-separated sites to run (others kept)")
    args = parser.parse_args()
    if args.table:
        print(table(json.loads((Path(args.out) / "results.json").read_text())))
        return 0
    require_data()
    model = Model.load()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.pilot:
        return pilot(model, datasets.ixi_cases("train")[: args.pilot], out)
    cases = (datasets.ixi_cases("val") + datasets.ixi_cases("test"))[: args.scans]
    print(f"# {machine()}; {len(cases)} healthy IXI scans (validation + test) per site")
    stored = out / "results.json"
    results = json.loads(stored.read_text()) if stored.is_file() else {}
    for name in args.sites.split(","):
        results[name] = run_site(name, SITES[name], cases, model, out, args.lesions)
        (out / "results.json").write_text(json.dumps(results, indent=1))
    print(table(results))
    return 0


def pilot(model: Model, cases: list[Case], out: Path) -> int:
    deciding = model.decision_scorer(model.default_scorer) or model.default_scorer
    detector = Detector(model, DetectOptions(scorer=deciding, device="cpu", regions="all"))
    ixi = load_sets(model, detector.scorer_name)
    detector._sets[detector.scorer_name] = None
    threshold = float(model.calibration["scorers"][detector.scorer_name]["voxel_threshold"])
    with tempfile.TemporaryDirectory(dir=out) as work:
        for name, site in {"none": None, **SITES}.items():
            ps = []
            for case in cases:
                path = Path(work) / f"{name}-{case.case_id}.nii.gz"
                image = read_image(case.images["t1"]) if site is None else site_scan(case, site)
                sitk.WriteImage(image, str(path))
                scan = measure(detector, Case(case.case_id, {"t1": path}), Path(work))[detector.scorer_name]
                ps.append(p_value(peak_at(scan.heatmap_file, threshold, 0.1), ixi.region_max))
            print(f"site {name}: IXI p-values {', '.join(f'{p:.3f}' for p in ps)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
