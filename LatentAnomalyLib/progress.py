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


def format_duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    return f"{hours:d}:{rest // 60:02d}:{rest % 60:02d}"


class BatchProgress:
    """Cases finished out of a total, how many failed and run now, the rate and an ETA from this run's cases.

    ``bar`` redraws one line on stderr (a terminal); ``lines`` prints one plain line per case on
    stdout (logs, schedulers); ``none`` is silent. Cases skipped because an earlier run finished
    them count as done but not in the rate or ETA, which would otherwise be far too optimistic.
    ``running`` (how many scans run now) is known on a Dask cluster and shown when given.
    """

    def __init__(self, total: int, mode: str = "auto", stream: TextIO | None = None, label: str = "batch"):
        if mode == "auto":
            mode = "bar" if sys.stderr.isatty() else "lines"
        self.mode = mode
        self.stream = stream or (sys.stderr if mode == "bar" else sys.stdout)
        self.total = total
        self.label = label
        self.finished = 0
        self.processed = 0
        self.failed = 0
        self.running: int | None = None
        self.last = ""
        self.start = time.perf_counter()

    def eta(self) -> float | None:
        if not self.processed:
            return None
        elapsed = time.perf_counter() - self.start
        return elapsed / self.processed * (self.total - self.finished)

    def rate(self) -> float | None:
        """Scans per minute finished in this run."""
        elapsed = time.perf_counter() - self.start
        return 60.0 * self.processed / elapsed if self.processed and elapsed > 0 else None

    def skipped(self, count: int) -> None:
        self.finished += count
        if count and self.mode != "none":
            print(f"{self.label}: {count} of {self.total} case(s) already done, skipped", file=self.stream, flush=True)

    def _counts(self) -> str:
        eta, rate = self.eta(), self.rate()
        parts = [f"eta {format_duration(eta) if eta is not None else '?'}"]
        if self.failed:
            parts.append(f"{self.failed} failed")
        if self.running is not None:
            parts.append(f"{self.running} running")
        if rate is not None:
            parts.append(f"{rate:.1f}/min")
        return ", ".join(parts)

    def case_done(self, case_id: str, status: str, failed: bool = False, running: int | None = None) -> None:
        self.finished += 1
        self.processed += 1
        self.failed += int(failed)
        self.running = running if running is not None else self.running
        self.last = case_id
        if self.mode == "none":
            return
        if self.mode == "lines":
            print(f"{self.label} {self.finished}/{self.total} {case_id} {status}; {self._counts()}",
                  file=self.stream, flush=True)
            return
        self._draw()

    def tick(self, running: int) -> None:
        """No case ended lately; how many run now (the bar redraws; lines print only when a case ends)."""
        self.running = running
        if self.mode == "bar":
            self._draw()

    def _draw(self) -> None:
        width = 30
        filled = int(round(width * self.finished / max(1, self.total)))
        end = "\n" if self.finished >= self.total else ""
        print(
            f"\r{self.label} [{'#' * filled}{'-' * (width - filled)}] {self.finished}/{self.total} "
            f"{self._counts()} {self.last[:24]:<24s}",
            end=end,
            file=self.stream,
            flush=True,
        )
