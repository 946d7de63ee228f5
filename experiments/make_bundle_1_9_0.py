"""Model 1.9.0 from model 1.8.0: the stripped-input boundary steps and the ``combined`` subject rule, nothing refitted.

Why a script: docs/map-design.md (probe 4) chose, on validation data only, the band mask and the thick fill for
skull-stripped inputs (``preprocess.stripped_boundary``) and the ``combined`` subject rule. Both are bundle data. The
calibration scans have their skull, so neither preprocessing step touches them, and the ``combined`` rule reads the
two calibration sets 1.8.0 already holds (map statistic and largest region peak, one pair per scan): the encoder,
scorers, thresholds and calibration sets stay byte for byte; only ``config.json``, the default scorer's file and
the manifest change.

    python experiments/make_bundle_1_9_0.py --model runs/bundle-1.8.0 --out models/latent-anomaly-t1

(``runs/bundle-1.8.0``: ``git archive 2463f52 models/latent-anomaly-t1``, or the 1.8.0 bundle wherever it is.)
"""

from __future__ import annotations

import argparse
import copy
from pathlib import Path

from LatentAnomalyLib.bundle import contents as bundle_contents
from LatentAnomalyLib.bundle.format import Bundle

VERSION = "1.9.0"
STRIPPED_BOUNDARY = {"band_mm": 6.0, "min_kept_fraction": 0.5, "fill_opening_voxels": 2, "fill_near_voxels": 2}
SUBJECT_STATISTIC = "combined"
DESCRIPTION_ADDED = (
    " Model 1.9.0: for skull-stripped inputs, the product's own brain mask decides in the outer 6 mm of the site's "
    "mask and template tissue fills thick-slice gaps (the calibration scans keep their skull and are unchanged); a "
    "scan is flagged by the Bonferroni combination of its map statistic and its largest region peak score "
    "(p = min(1, 2 min(p_map, p_peak))), so p-values are at least 2/119 with the 118 calibration scans."
)


def converted(source: bundle_contents.Contents) -> bundle_contents.Contents:
    """1.8.0's contents with the 1.9.0 preprocessing and subject rule (new dicts; ``source`` untouched)."""
    config, scorers = copy.deepcopy(source.config), copy.deepcopy(source.scorers)
    if config["version"] != "1.8.0":
        raise SystemExit(f"expected model 1.8.0, got {config['version']}")
    config["version"] = VERSION
    config["preprocess"]["stripped_boundary"] = dict(STRIPPED_BOUNDARY)
    old_rule = "a scan is flagged by its largest region peak score; a flagged scan shows"
    if old_rule not in config["description"]:
        raise SystemExit("model 1.8.0's description does not name its subject rule as expected")
    config["description"] = config["description"].replace(old_rule, "a flagged scan shows") + DESCRIPTION_ADDED
    conformal = scorers[config["default_scorer"]]["calibration"]["conformal"]
    conformal["subject_statistic"] = SUBJECT_STATISTIC
    conformal["settings"]["subject_statistic"] = SUBJECT_STATISTIC
    conformal["settings"]["how"] += (
        "; model 1.9.0: python experiments/make_bundle_1_9_0.py (preprocess.stripped_boundary and the combined rule "
        "chosen in docs/map-design.md, probe 4)"
    )
    return bundle_contents.Contents(config, scorers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True, help="the 1.8.0 bundle")
    parser.add_argument("--out", type=Path, required=True, help="where to write 1.9.0 (may be --model)")
    args = parser.parse_args()
    bundle = Bundle.load(args.model)
    out = bundle_contents.rewrite(bundle, converted(bundle_contents.read(bundle)), args.out, VERSION)
    print(f"wrote {out} (model {VERSION})")


if __name__ == "__main__":
    main()
