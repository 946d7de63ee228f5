"""Calibration steps run by hand when a bundle's calibration sets are rebuilt (docs/calibration.md); not
subcommands of ``latent-anomaly``:

    python -m LatentAnomalyLib.cli.calibrate crossfit [--model DIR] [--scorer NAME] [--cache DIR] [--work DIR]
        [--folds K] [--seed N]

``crossfit`` runs :func:`LatentAnomalyLib.training.crossfit.run` (records.json and the fold scorers in ``--work``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from .. import DEFAULT_SEED


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m LatentAnomalyLib.cli.calibrate", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="step", required=True)
    p = sub.add_parser("crossfit", help="healthy calibration sets by cross-fitting over the IXI train and val scans")
    p.add_argument("--model", help="bundle folder (default: the bundled model)")
    p.add_argument("--scorer", default=None, help="default: the bundle's default scorer")
    p.add_argument("--cache", default="runs/scan_cache/latent-anomaly-t1-1.4.0", help="preprocessed and encoded scans")
    p.add_argument("--work", default="runs/crossfit", help="records.json and the fold scorers go here")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help="fold assignment (default: the configuration seed)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    import torch

    from ..bundle.model import Model
    from ..training import crossfit

    torch.set_num_threads(1)
    model = Model.load(args.model)
    crossfit.run(model, args.scorer or model.default_scorer, Path(args.cache), Path(args.work), args.folds, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
