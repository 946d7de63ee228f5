"""Do healthy test scans sit above the calibration scans, and is age why? (report only)

    nice -n 5 python experiments/calibration_shift.py [--model models/latent-anomaly-t1] \
        [--cache runs/scan_cache/latent-anomaly-t1-1.4.0]

The conformal guarantee is marginal: P(flag) <= alpha for a healthy scan *exchangeable* with the 118 cross-fit
calibration scans. This script measures, for the bundle's default scorer and its subject statistic (the largest
region peak), how far the IXI test split (30, same scanner) and the other-site scans (5) follow it:
- healthy flag rate at several alphas, against alpha, with the one-sided binomial tail P(X >= flagged | alpha);
- the statistic's median in each set and a one-sided Mann-Whitney test, test above calibration;
- ages (``ixi-t1/participants.csv``) of the calibration and test scans, and the Spearman correlation of the
  statistic with age among the calibration scans;
- the conditional flag rate by age inside the calibration set itself: each calibration scan's leave-one-out
  conformal p-value against the other 117 (valid marginally), split at age 50;
- on the IXI test split, the product's p-values without and with ``--age`` (age-matched, model 1.8.0: against the
  calibration scans of the same band, ``score/age_bands.py``), flag rates by alpha overall and by band.
Test and other-site scans go through the product's ``Detector``, preprocessed and encoded once in ``--cache`` (by
default the model's own folder under runs/scan_cache; models 1.4.0-1.7.0 share their preprocessing and encoder, so
1.4.0's cache serves them all).
Nothing is chosen from these figures.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import benchmarks_on_path  # noqa: F401  (benchmarks/ helpers)
import numpy as np
import torch
from cache_scans import cache_folder, set_cases
from common import machine, require_data
from scipy import stats

from LatentAnomalyLib.bundle.model import Model
from LatentAnomalyLib.evaluation.datasets import participant_ages
from LatentAnomalyLib.evaluation.outputs import markdown_table
from LatentAnomalyLib.pipeline import DetectOptions, Detector
from LatentAnomalyLib.score.age_bands import band_index, band_label
from LatentAnomalyLib.score.conformal import load_sets, p_values
from LatentAnomalyLib.training.scan_cache import cached

ALPHAS = (0.01, 0.05, 0.1, 0.2, 0.3, 0.5)
AGE_CUT = 50.0


def peaks(model: Model, name: str, cache: Path | None, ages: dict[str, float]) -> dict[str, tuple[float, float | None]]:
    """Each scan's largest region peak (the subject statistic) from the product's detection, and its age-matched
    p-value (``--age``) when the scan's age is known and the model stores calibration ages."""
    detector = Detector(model, DetectOptions(device="cpu"))
    folder = cache / name if cache else cache_folder(model, name)
    sets = load_sets(model, model.default_scorer)
    out = {}
    for case in set_cases(name):
        scan = cached(detector, folder, case.case_id, case.images["t1"])
        result = detector._finish(scan.image, scan.pre, scan.encoded, model.default_scorer, {}, 0)
        matched = None
        if case.case_id in ages and sets is not None and sets.ages is not None:
            aged = Detector(model, DetectOptions(device="cpu", age=ages[case.case_id]))
            matched = aged._finish(scan.image, scan.pre, scan.encoded, model.default_scorer, {}, 0).summary
            matched = float(matched["subject_p_value"])
        out[case.case_id] = (float(result.summary["subject_region_peak"]), matched)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model")
    parser.add_argument("--cache", type=Path, help="scan cache folder (holding ixi-test/ and other-sites/)")
    args = parser.parse_args()
    root = require_data()
    torch.set_num_threads(2)
    model = Model.load(args.model)
    sets = load_sets(model, model.default_scorer)
    if sets is None or sets.subject_statistic != "region_peak":
        raise SystemExit("the default scorer has no region-peak calibration sets")
    entry = model.calibration["scorers"][model.default_scorer]["conformal"]
    calibration = dict(zip(entry["case_ids"], sets.region_max.tolist()))
    ages = participant_ages(root / "ixi-t1" / "participants.csv")
    found = {name: peaks(model, name, args.cache, ages) for name in ("ixi-test", "other-sites")}
    sets_peaks = {name: {c: v[0] for c, v in values.items()} for name, values in found.items()}

    rows = []
    for name, values in sets_peaks.items():
        p = p_values(list(values.values()), sets.region_max)
        for alpha in ALPHAS:
            flagged = int((p <= alpha).sum())
            tail = float(stats.binom.sf(flagged - 1, len(p), alpha))
            rows.append({"set": name, "alpha": alpha, "flagged": f"{flagged}/{len(p)}", "rate": flagged / len(p),
                         "P(X >= flagged)": tail})
    print(f"\n## Healthy flag rate against alpha, {model.name} {model.version} ({model.default_scorer})")
    print(f"\n{machine()}; calibration: {sets.n} cross-fit IXI scans\n")
    print(markdown_table(rows, ["set", "alpha", "flagged", "rate", "P(X >= flagged)"]))

    cal = np.asarray(list(calibration.values()))
    summary = [{"set": "calibration (cross-fit)", "scans": cal.size, "median peak": float(np.median(cal)),
                "Mann-Whitney p (above calibration)": None,
                "median age": float(np.median([ages[c] for c in calibration if c in ages]))}]
    for name, values in sets_peaks.items():
        v = np.asarray(list(values.values()))
        known = [ages[c] for c in values if c in ages]
        summary.append({"set": name, "scans": v.size, "median peak": float(np.median(v)),
                        "Mann-Whitney p (above calibration)": float(stats.mannwhitneyu(v, cal, alternative="greater").pvalue),
                        "median age": float(np.median(known)) if known else None})
    print()
    print(markdown_table(summary, ["set", "scans", "median peak", "Mann-Whitney p (above calibration)", "median age"]))

    aged = [(ages[c], v) for c, v in calibration.items() if c in ages]
    rho, p_rho = stats.spearmanr([a for a, _ in aged], [v for _, v in aged])
    test = [(ages[c], v) for c, v in sets_peaks["ixi-test"].items() if c in ages]
    rho_t, p_t = stats.spearmanr([a for a, _ in test], [v for _, v in test])
    print(f"\nSpearman(peak, age): calibration rho {rho:.2f} (p {p_rho:.3f}, n {len(aged)}); "
          f"IXI test rho {rho_t:.2f} (p {p_t:.3f}, n {len(test)})")

    ids = [c for c in calibration if c in ages]
    loo = {c: float(p_values([calibration[c]], np.asarray([calibration[o] for o in calibration if o != c]))[0])
           for c in ids}
    bands = []
    for label, keep in ((f"under {AGE_CUT:g}", lambda a: a < AGE_CUT), (f"{AGE_CUT:g} or older", lambda a: a >= AGE_CUT)):
        chosen = [loo[c] for c in ids if keep(ages[c])]
        bands.append({"calibration scans aged": label, "scans": len(chosen),
                      **{f"rate at {a:g}": float(np.mean(np.asarray(chosen) <= a)) for a in ALPHAS[1:5]}})
    print("\nleave-one-out conformal flag rate inside the calibration set, by age\n")
    print(markdown_table(bands, ["calibration scans aged", "scans", *[f"rate at {a:g}" for a in ALPHAS[1:5]]]))

    age_matched_table(found["ixi-test"], ages, sets)


def age_matched_table(found: dict[str, tuple[float, float | None]], ages: dict[str, float], sets: Any) -> None:
    """IXI test flag rates with the marginal and the age-matched p-values, overall and per age band."""
    if not any(m is not None for _, m in found.values()):
        return
    cases = [c for c, (_, m) in found.items() if m is not None]
    marginal = dict(zip(cases, p_values([found[c][0] for c in cases], sets.region_max)))
    rows = []
    for label, chosen in [("all", cases)] + [
        (band_label(i, sets.age_cuts), [c for c in cases if band_index(ages[c], sets.age_cuts) == i])
        for i in range(len(sets.age_cuts) + 1)
    ]:
        for alpha in ALPHAS[1:5]:
            rows.append({"IXI test aged": label, "scans": len(chosen), "alpha": alpha,
                         "flagged, all calibration scans": sum(marginal[c] <= alpha for c in chosen),
                         "flagged, age-matched": sum(found[c][1] <= alpha for c in chosen)})
    print("\nIXI test split: scans flagged with p-values against every calibration scan and against the scans of the "
          "same age band (--age)\n")
    print(markdown_table(rows, ["IXI test aged", "scans", "alpha", "flagged, all calibration scans",
                                "flagged, age-matched"]))


if __name__ == "__main__":
    main()
