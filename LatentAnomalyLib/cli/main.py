"""The `latent-anomaly` command: the parser of every subcommand, and error reporting.

Each subcommand lives in its own module of this package (``detect``, ``info``, ``train``, ``site_calibrate`` for
``calibrate``, ``evaluate``, ``batch``, ``review``, ``pacs``) with ``add_parser`` (its options) and ``run`` (options ->
library call -> printed result). These modules import only argparse at the top; the library is imported inside
``run``, so ``--help`` and argument errors stay fast.
User errors (bad input, bad bundle, bad option) end with
one line on stderr and exit code 2, never a traceback (``--debug`` shows it).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence

from .. import __version__
from . import batch, detect, evaluate, info, pacs, review, site_calibrate, train
from .options import OneLineParser

EXIT_USER_ERROR = 2
EXIT_INTERNAL_ERROR = 1
SUBCOMMANDS = ("detect", "info", "train", "calibrate", "evaluate", "batch", "review", "pacs")
MODULES = {"calibrate": "site_calibrate"}  # the module name ``calibrate`` is the maintainers' IXI cross-fit tool


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="latent-anomaly", description="Unsupervised anomaly detection in brain MRI.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)
    for module in (detect, info, train, site_calibrate, evaluate, batch, review, pacs):
        module.add_parser(sub)
    return parser


def command(name: str) -> Callable[[argparse.Namespace], int]:
    """The function that runs subcommand ``name``."""
    if name not in SUBCOMMANDS:
        raise KeyError(name)
    return importlib.import_module(f"{__package__}.{MODULES.get(name, name)}").run


def _interrupt(signum: int, frame: object) -> None:
    """SIGTERM and SIGHUP end a run as Ctrl-C does, so its clean-up (locks, staging folders) runs."""
    raise KeyboardInterrupt


def _forget_unhandled_interrupt() -> None:
    """Keep exit status 130 for an interrupt that was handled.

    A KeyboardInterrupt that passes through ``exec`` of a string (dataclasses and namedtuple build their methods
    that way, so any import can be inside one) sets CPython's "unhandled KeyboardInterrupt" flag even when it is
    caught later; at exit the interpreter then kills itself with SIGINT (status -2) instead of returning 130. In
    CPython 3.10-3.13 every ``exec`` of a string starts by clearing that flag, so one empty ``exec`` forgets it
    (should a later CPython stop setting the flag there, the empty ``exec`` is harmless).
    """
    exec("")


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, _interrupt) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    with _terminate_as_interrupt():
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    from ..errors import LatentAnomalyError

    try:
        return command(args.command)(args)
    except (LatentAnomalyError, FileNotFoundError) as error:
        if args.debug:
            raise
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USER_ERROR
    except OSError as error:  # a user's file or folder the system refused (loops, permissions, a full disk)
        if args.debug:
            raise
        from ..io.path_checks import describe_os_error

        print(f"error: {describe_os_error(error)}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        _forget_unhandled_interrupt()
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # the last line of defence: one line, never a traceback
        if args.debug:
            raise
        if isinstance(error, RuntimeError) and str(error).startswith("Symlink loop"):  # Path.resolve, Python < 3.13
            print(f"error: {error}: a symbolic link loop; point the path at a real file", file=sys.stderr)
            return EXIT_USER_ERROR
        print(
            f"error: unexpected failure ({type(error).__name__}: {error}); rerun with --debug for details",
            file=sys.stderr,
        )
        return EXIT_INTERNAL_ERROR


if __name__ == "__main__":
    sys.exit(main())
