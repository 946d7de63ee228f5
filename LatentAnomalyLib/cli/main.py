"""The `latent-anomaly` command: the parser of every subcommand, and error reporting.

Each subcommand lives in its own module of this package (``detect``, ``info``, ``train``, ``site_calibrate`` for
``calibrate``, ``evaluate``, ``batch``, ``review``) with ``add_parser`` (its options) and ``run`` (options -> library
call -> printed result). These modules import only argparse at the top; the library is imported inside ``run``, so ``--help`` and argument errors stay fast.
User errors (bad input, bad bundle, bad option) end with
one line on stderr and exit code 2, never a traceback (``--debug`` shows it).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

from .. import __version__
from . import batch, detect, evaluate, info, review, site_calibrate, train
from .options import OneLineParser

EXIT_USER_ERROR = 2
EXIT_INTERNAL_ERROR = 1
SUBCOMMANDS = ("detect", "info", "train", "calibrate", "evaluate", "batch", "review")
MODULES = {"calibrate": "site_calibrate"}  # the module name ``calibrate`` is the maintainers' IXI cross-fit tool


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="latent-anomaly", description="Unsupervised anomaly detection in brain MRI.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)
    for module in (detect, info, train, site_calibrate, evaluate, batch, review):
        module.add_parser(sub)
    return parser


def command(name: str) -> Callable[[argparse.Namespace], int]:
    """The function that runs subcommand ``name``."""
    if name not in SUBCOMMANDS:
        raise KeyError(name)
    return importlib.import_module(f"{__package__}.{MODULES.get(name, name)}").run


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from ..errors import LatentAnomalyError

    try:
        return command(args.command)(args)
    except (LatentAnomalyError, FileNotFoundError) as error:
        if args.debug:
            raise
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # the last line of defence: one line, never a traceback
        if args.debug:
            raise
        print(
            f"error: unexpected failure ({type(error).__name__}: {error}); rerun with --debug for details",
            file=sys.stderr,
        )
        return EXIT_INTERNAL_ERROR


if __name__ == "__main__":
    sys.exit(main())
