"""Rewrite a bundle in the current format (format 1 -> 2; see :mod:`.migrate`).

    python -m LatentAnomalyLib.bundle.upgrade OLD_BUNDLE --out NEW_BUNDLE [--version 1.5.1]

Not needed to use an old bundle (``Model.load`` upgrades format 1 in memory); this writes the
upgraded files once. Weights, arrays and templates are copied byte for byte; a new manifest lists
every file's SHA256. ``--out`` may be the bundle itself (written aside, then swapped in).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .contents import read, rewrite
from .format import Bundle, BundleError


def upgrade_bundle(source: str | os.PathLike[str], out: str | os.PathLike[str], version: str | None = None) -> Path:
    """The bundle at ``source`` written in format 2 at ``out``, as model ``version`` (default: unchanged)."""
    bundle = Bundle.load(source)
    contents = read(bundle)
    version = version or bundle.manifest["model_version"]
    contents.config["version"] = version
    return rewrite(bundle, contents, out, version)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", help="bundle folder (format 1 or 2)")
    parser.add_argument("--out", required=True, help="folder of the format-2 bundle (may be the bundle itself)")
    parser.add_argument("--version", help="model version of the rewritten bundle (default: unchanged)")
    args = parser.parse_args(argv)
    try:
        out = upgrade_bundle(args.bundle, args.out, args.version)
    except (BundleError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote bundle {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
