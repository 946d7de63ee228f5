"""`latent-anomaly info`: describe a model bundle and check its checksums."""

from __future__ import annotations

import argparse
import json


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "info", help="describe a model bundle", description="Describe a model bundle and check its checksums."
    )
    p.add_argument("--model", help="model bundle folder (default: the bundled T1 model)")
    p.add_argument("--json", action="store_true", help="print JSON")


def run(args: argparse.Namespace) -> int:
    from ..bundle.info import describe

    info = describe(args.model)
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        print(info["text"])
    return 0
