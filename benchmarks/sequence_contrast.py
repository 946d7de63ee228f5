"""Tissue contrast (GM/WM, CSF/WM) per sequence and dataset, as `detect`'s input-kind check measures it.

    nice -n 10 python benchmarks/sequence_contrast.py

Runs the bundle's preprocessing (brain mask, registration, normalisation) on T1, FLAIR and T2 scans
of the shared data and prints, per group, the range of the ratios and what the check decides
(refused by the normalisation or the CSF rule, warned, accepted). Used to set the thresholds in
``LatentAnomalyLib/preprocess/input_kind.py``.
"""

from __future__ import annotations

from pathlib import Path

from common import machine, require_data

from LatentAnomalyLib.bundle.model import Model
from LatentAnomalyLib.errors import InputError
from LatentAnomalyLib.evaluation import datasets
from LatentAnomalyLib.evaluation.outputs import markdown_table
from LatentAnomalyLib.io.read import read_image
from LatentAnomalyLib.pipeline import DetectOptions, Detector
from LatentAnomalyLib.preprocess.input_kind import CSF_WM_REFUSE, FLAT_GM_WM, GM_WM_WARN, tissue_contrast


def groups(root: Path) -> dict[str, list[Path]]:
    brats = [c.images for c in datasets.brats_cases(root)]
    mslub = sorted((root / "mslub").glob("*/"))
    return {
        "IXI T1 (first 10 of the test split)": [c.images["t1"] for c in datasets.ixi_cases("test", root)[:10]],
        "other-site T1": [c.images["t1"] for c in datasets.other_site_cases(root)],
        "BraTS T1": [i["t1"] for i in brats],
        "BraTS FLAIR": [i["flair"] for i in brats],
        "BraTS T2": [i["t2"] for i in brats],
        "MSLUB FLAIR": [p / "FLAIR.nii.gz" for p in mslub if (p / "FLAIR.nii.gz").exists()],
        "MSLUB T2": [p / "T2.nii.gz" for p in mslub if (p / "T2.nii.gz").exists()],
    }


def decide(gm: float, csf: float) -> str:
    if csf >= CSF_WM_REFUSE and gm < FLAT_GM_WM:
        return "refused"
    return "warned" if gm >= GM_WM_WARN or csf >= CSF_WM_REFUSE else "accepted"


def main() -> None:
    root = require_data()
    model = Model.load()
    detector = Detector(model, DetectOptions(device="cpu"))
    rows = []
    for name, paths in groups(root).items():
        gms, csfs, outcome = [], [], {"refused": 0, "warned": 0, "accepted": 0}
        for path in paths:
            try:
                pre = detector.preprocess(read_image(path), {})
            except InputError:  # the normalisation refuses GM brighter than WM
                outcome["refused"] += 1
                continue
            ratios = tissue_contrast(pre, model.template)
            gms.append(ratios["gm_to_wm"])
            csfs.append(ratios["csf_to_wm"])
            outcome[decide(ratios["gm_to_wm"], ratios["csf_to_wm"])] += 1
        rows.append(
            {
                "scans": f"{name} ({len(paths)})",
                "GM/WM": f"{min(gms):.2f}-{max(gms):.2f}" if gms else "-",
                "CSF/WM": f"{min(csfs):.2f}-{max(csfs):.2f}" if csfs else "-",
                **outcome,
            }
        )
        print(rows[-1], flush=True)
    print(f"\n## Tissue contrast by sequence (measured {machine()}; ranges over scans that pass normalisation)\n")
    print(markdown_table(rows, ("scans", "GM/WM", "CSF/WM", "refused", "warned", "accepted")))


if __name__ == "__main__":
    main()
