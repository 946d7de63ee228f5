"""`latent-anomaly review`: serve detect or batch results as a page in a web browser (the review extra)."""

from __future__ import annotations

import argparse

from .options import UsageError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "review",
        help="review results in a web browser",
        description="Serve a detect or batch output folder as a review page (needs the review extra).",
    )
    p.add_argument("results", help="a detect output folder or a batch output folder (with scores.csv)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)")
    p.add_argument("--port", type=int, default=0, help="port to listen on (default: 0, a free port)")


def run(args: argparse.Namespace) -> int:
    import importlib.util

    from LatentAnomalyReview import INSTALL_HINT, REQUIRED_MODULES

    if any(importlib.util.find_spec(name) is None for name in REQUIRED_MODULES):
        raise UsageError(INSTALL_HINT)
    from LatentAnomalyReview.results import load_results

    results = load_results(args.results)  # a missing or malformed folder fails here, before any server starts
    from LatentAnomalyReview.server import serve

    return serve(results, host=args.host, port=args.port)
