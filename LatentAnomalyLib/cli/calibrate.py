"""Calibration steps run by hand when a bundle's calibration sets are rebuilt (docs/calibration.md); not
subcommands of ``latent-anomaly``:

    python -m LatentAnomalyLib.cli.calibrate crossfit [--model DIR] [--scorer NAME] [--cache DIR] [--work DIR]
        [--folds K] [--seed N]
    python -m LatentAnomalyLib.cli.calibrate bundle --out DIR [--config FILE] [--model DIR] [--work DIR]
    python -m LatentAnomalyLib.cli.calibrate combine --out DIR [--config FILE] [--model DIR] [--cache DIR]

``crossfit`` runs :func:`LatentAnomalyLib.training.crossfit.run` (records.json and the fold scorers in ``--work``);
``bundle`` runs :func:`LatentAnomalyLib.training.conformal_bundle.write` on those records with the configuration's
``conformal`` block, version and description (a bundle with calibration sets at ``--out``); ``combine`` runs
:func:`LatentAnomalyLib.training.combined_scorer.write`: the configuration's combined scorers added to a trained
bundle and calibrated on the IXI validation scans, before ``crossfit``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from .. import DEFAULT_SEED
from .options import OneLineParser


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="python -m LatentAnomalyLib.cli.calibrate", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="step", required=True)
    p = sub.add_parser("crossfit", help="healthy calibration sets by cross-fitting over the IXI train and val scans")
    p.add_argument("--model", help="bundle folder (default: the bundled model)")
    p.add_argument("--scorer", default=None, help="default: the bundle's default scorer")
    p.add_argument("--cache", default="runs/scan_cache/latent-anomaly-t1-1.4.0", help="preprocessed and encoded scans")
    p.add_argument("--work", default="runs/crossfit", help="records.json and the fold scorers go here")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help="fold assignment (default: the configuration seed)")
    p = sub.add_parser("bundle", help="write a bundle with conformal calibration sets from the cross-fit records")
    p.add_argument("--config", default="configs/default_t1.json", help="its conformal block, version, description")
    p.add_argument("--model", default="models/latent-anomaly-t1", help="the bundle to copy")
    p.add_argument("--work", default="runs/crossfit", help="the folder holding crossfit's records.json")
    p.add_argument("--out", required=True, help="the new bundle (may be --model itself)")
    p.add_argument(
        "--ages",
        help="participants table (columns MRID, Age) for age-matched p-values; default: ixi-t1/participants.csv in "
        "the data folder, when it exists",
    )
    p = sub.add_parser("combine", help="add the configuration's combined scorers to a trained bundle")
    p.add_argument("--config", default="configs/default_t1.json", help="its scorers, default scorer, version")
    p.add_argument("--model", default="models/latent-anomaly-t1", help="the trained bundle")
    p.add_argument("--cache", default="runs/scan_cache/latent-anomaly-t1-1.4.0", help="preprocessed and encoded scans")
    p.add_argument("--out", required=True, help="the new bundle (may be --model itself)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.step == "bundle":
        return _bundle(args)
    if args.step == "combine":
        return _combine(args)
    import torch

    from ..bundle.model import Model
    from ..training import crossfit

    torch.set_num_threads(1)
    model = Model.load(args.model)
    crossfit.run(model, args.scorer or model.default_scorer, Path(args.cache), Path(args.work), args.folds, args.seed)
    return 0


def _bundle(args: argparse.Namespace) -> int:
    from ..evaluation.datasets import data_root, participant_ages
    from ..io.text_files import MAX_JSON_BYTES, read_text_limited
    from ..training.conformal_bundle import write

    config = json.loads(read_text_limited(args.config, MAX_JSON_BYTES, "configuration file"))
    records = json.loads((Path(args.work) / "records.json").read_text())
    table = Path(args.ages) if args.ages else data_root() / "ixi-t1" / "participants.csv"
    if args.ages and not table.is_file():
        print(f"error: --ages {table}: no such file", file=sys.stderr)
        return 2
    try:
        ages = participant_ages(table)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    known = sum(r["case_id"] in ages for r in records.get("records", []))
    print(f"ages for {known} of {len(records.get('records', []))} calibration scans ({table})")
    out = write(
        Path(args.model), records, config["conformal"], config["version"], Path(args.out), config.get("description"),
        ages,
    )
    print(f"wrote bundle {out}")
    return 0


def _combine(args: argparse.Namespace) -> int:
    import torch

    from ..training.combined_scorer import write
    from ..training.config import TrainConfig

    torch.set_num_threads(1)
    out = write(Path(args.model), TrainConfig.from_file(args.config), Path(args.cache), Path(args.out))
    print(f"wrote bundle {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
