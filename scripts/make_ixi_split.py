"""Write the fixed IXI train / validation / test split (run once; the output is committed).

Why a script: the split must be reproducible and reviewable. Subjects are shuffled with a fixed
seed and cut into 98 train (encoder and scorers), 20 validation (thresholds, post-processing
choices, synthetic-lesion development checks) and 30 test (reported only, never tuned on).
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

SEED = 20261123
N_TRAIN, N_VAL = 98, 20


def main(data_root: str = "../shared/data") -> None:
    t1_dir = Path(data_root) / "ixi-t1" / "t1"
    subjects = sorted(p.name.replace("_T1.nii.gz", "") for p in t1_dir.glob("*_T1.nii.gz"))
    rng = random.Random(SEED)
    rng.shuffle(subjects)
    split = {
        "dataset": "ixi-t1",
        "seed": SEED,
        "train": sorted(subjects[:N_TRAIN]),
        "val": sorted(subjects[N_TRAIN : N_TRAIN + N_VAL]),
        "test": sorted(subjects[N_TRAIN + N_VAL :]),
    }
    out = Path(__file__).resolve().parents[1] / "splits" / "ixi_t1_split.json"
    out.write_text(json.dumps(split, indent=1) + "\n")
    print(f"wrote {out}: " + ", ".join(f"{k} {len(split[k])}" for k in ("train", "val", "test")))


if __name__ == "__main__":
    main(*sys.argv[1:])
