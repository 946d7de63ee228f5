"""Rewrite a model bundle in the current format (format 1 -> 2, docs/bundle-format.md); not a subcommand of
``latent-anomaly``:

    python -m LatentAnomalyLib.cli.upgrade OLD_BUNDLE --out NEW_BUNDLE [--version 1.5.1]

Runs :func:`LatentAnomalyLib.bundle.upgrade.upgrade_bundle`. Not needed to use an old bundle (``Model.load``
upgrades format 1 in memory); this writes the upgraded files once. ``--out`` may be the bundle itself. A bundle
that cannot be read or written ends with one ``error:`` line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .options import OneLineParser


def build_parser() -> argparse.ArgumentParser:
    """The options: the bundle, ``--out`` and ``--version``."""
    parser = OneLineParser(
        prog="python -m LatentAnomalyLib.cli.upgrade", description="Rewrite a model bundle in bundle format 2."
    )
    parser.add_argument("bundle", help="bundle folder (format 1 or 2)")
    parser.add_argument("--out", required=True, help="folder of the format-2 bundle (may be the bundle itself)")
    parser.add_argument("--version", help="model version of the rewritten bundle (default: unchanged)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Upgrade the bundle named on the command line; 0 when written, 2 (one ``error:`` line) when not."""
    args = build_parser().parse_args(argv)
    from ..bundle.upgrade import upgrade_bundle
    from ..errors import LatentAnomalyError

    try:
        out = upgrade_bundle(args.bundle, args.out, args.version)
    except (LatentAnomalyError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote bundle {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
