"""The outlier-removal table (issue 16; Behrendt et al., ISBI 2022, Fig. 2) from the runs of
``benchmarks/outlier_removal_reduced.sh``.

Per impurity level and arm (removal off/on): the fraction of injected lesion scans and of healthy
scans that outlier removal dropped (from each work folder's ``metrics.json`` and
``family_workdir.json``), then subject AUROC and mean per-case voxel AUPRC of the default scorer on
the lesion scans never injected (``outliers.json`` and any other ``*.json`` table that
``benchmarks/encoder_families.py`` wrote in the same folder, e.g. a clean run ``inject0-off``).
Below the table, for each run with removal: the loss of each injected scan at the decision, as a
multiple of the mean (removal needs more than gamma), and its rank among all training scans.

    python benchmarks/outlier_removal_table.py runs/outliers
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def _fraction(part: set[str], removed: set[str]) -> str:
    return f"{len(part & removed)}/{len(part)}" if part else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="the OUT folder of outlier_removal_reduced.sh")
    args = parser.parse_args()
    results = {  # outliers.json, plus any other table of the same script there (e.g. a clean reference run)
        Path(r["bundle"]).parent.name: r for table in sorted(args.out.glob("*.json")) for r in json.loads(table.read_text())
    }
    print(
        "| injected | share | removal | injected removed | healthy removed | subj AUROC | BraTS AUPRC | MSLUB AUPRC "
        "| healthy flagged |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for work in sorted(args.out.glob("inject*-*"), key=lambda p: (int(p.name[6:].split("-")[0]), p.name)):
        if work.name not in results:
            continue
        setup = json.loads((work / "family_workdir.json").read_text())
        metrics = json.loads((work / "metrics.json").read_text())
        removed = set(metrics["encoder"].get("removed_as_outliers", []))
        injected, healthy = set(setup["injected"]), set(setup["train"])
        row = results[work.name]["scorers"]["gaussian4mm"]
        share = len(injected) / (len(injected) + len(healthy))
        print(
            f"| {len(injected)} | {100 * share:.1f}% | {work.name.split('-')[-1]} | {_fraction(injected, removed)} "
            f"| {_fraction(healthy, removed)} | {row['subject_auroc']:.3f} | {row['brats_auprc']:.3f} "
            f"| {row['mslub_auprc']:.3f} | {100 * row['healthy_flagged']:.2f}% |"
        )
    for work in sorted(args.out.glob("inject*-on")):
        setup = json.loads((work / "family_workdir.json").read_text())
        for decision in json.loads((work / "metrics.json").read_text())["encoder"].get("outlier_rounds", []):
            losses = decision["losses"]  # case id -> loss at the decision
            ranked = sorted(losses, key=losses.get, reverse=True)
            parts = [
                f"{i} {losses[i] / decision['mean_loss']:.2f}x mean, rank {ranked.index(i) + 1}/{len(ranked)}"
                for i in setup["injected"]
            ]
            print(f"# {work.name} round {decision['round']} (threshold {decision['threshold'] / decision['mean_loss']:.2f}x mean): "
                  + "; ".join(parts))


if __name__ == "__main__":
    main()
