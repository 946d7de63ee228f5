"""Progress display: a bar on a terminal, parseable lines otherwise (the Slicer module reads them).

Line format, one per stage change, on stdout: ``PROGRESS <percent> <stage>``. Anything that starts
a process (Slicer, a batch script) can turn these into a progress bar without parsing human text,
and stderr keeps only what a person must read (the one-line error, notes).
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

PREFIX = "PROGRESS"


def format_line(stage: str, fraction: float) -> str:
    return f"{PREFIX} {round(100 * fraction):d} {stage}"


def parse_line(line: str) -> tuple[float, str] | None:
    """(fraction, stage) from a progress line, or None for any other line."""
    parts = line.strip().split(" ", 2)
    if len(parts) < 2 or parts[0] != PREFIX:
        return None
    try:
        percent = float(parts[1])
    except ValueError:
        return None
    return percent / 100.0, parts[2] if len(parts) > 2 else ""


class ProgressDisplay:
    """Callable ``(stage, fraction)``; mode is ``bar``, ``lines`` or ``none`` (``auto`` picks)."""

    def __init__(self, mode: str = "auto", stream: TextIO | None = None, label: str = ""):
        if mode == "auto":
            mode = "bar" if sys.stderr.isatty() else "lines"
        self.stream = stream or (sys.stderr if mode == "bar" else sys.stdout)
        self.mode = mode
        self.label = label
        self.start = time.perf_counter()

    def __call__(self, stage: str, fraction: float) -> None:
        if self.mode == "none":
            return
        if self.mode == "lines":
            print(format_line(stage, fraction), file=self.stream, flush=True)
            return
        width = 30
        filled = int(round(width * fraction))
        elapsed = time.perf_counter() - self.start
        bar = "#" * filled + "-" * (width - filled)
        end = "\n" if fraction >= 1.0 else ""
        prefix = f"{self.label} " if self.label else ""
        print(
            f"\r{prefix}[{bar}] {100 * fraction:3.0f}% {stage:<12s} {elapsed:5.1f}s",
            end=end,
            file=self.stream,
            flush=True,
        )
